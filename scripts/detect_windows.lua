-- The windows the shipped rules (rules/*.lua) watch, shared by the pipelines
-- that load those rules (scripts/detect.lua, scripts/demo.lua):
--   require "detect_windows"
--
-- Connection attempts are TCP flows that opened with SYN and went nowhere:
-- SYN only (2), SYN answered by RST (6), or, as flow logs that merge both
-- directions report a refused connection, SYN+RST+ACK (22). Flows whose input
-- carries no flags (0, e.g. classic CSV) are counted too, so the scan and
-- flood rules still work on such input.
local attempts = { proto = 6, tcp_flags = { 0, 2, 6, 22 } }
-- The networks counted as inside (RFC 1918 private space): edit to your
-- address plan. egress keeps only traffic from them to elsewhere.
local internal = { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16" }
--
-- The scan windows, keyed by a pair of addresses (or an address and a port),
-- have a result per pair, millions an hour on a busy network: they feed the
-- rules but are not published (publish = false) to the output topic or the
-- page.

window "scan_vertical" {
  key = { "src_ip", "dst_ip" }, size = "30s", slide = "10s", where = attempts, distinct = "dst_port",
  publish = false,
}
-- The same over 5 minutes, for scans paced to stay under the 30 s threshold.
window "scan_vertical_slow" {
  key = { "src_ip", "dst_ip" }, size = "5m", slide = "1m", where = attempts, distinct = "dst_port",
  publish = false,
}
window "scan_horizontal" {
  key = { "src_ip", "dst_port" }, size = "30s", slide = "10s", where = attempts, distinct = "dst_ip",
  publish = false,
}
window "syn_to_target" {
  key = "dst_ip", size = "10s", where = attempts, distinct = "src_ip", sum = "packets",
}
window "udp_reflection" {
  key = "dst_ip", size = "10s",
  where = { proto = 17, src_port = { 53, 123 } }, sum = "bytes", distinct = "src_ip",
}
window "traffic" { size = "10s", sum = { "bytes", "packets" } }
-- Egress per internal host, with its top destinations: a window per host
-- rather than per (host, destination) pair keeps the keys to the number of
-- internal hosts however many addresses they talk to.
window "egress"  {
  key = "src_ip", size = "60s", slide = "10s", sum = "bytes",
  topk = { field = "dst_ip", by = "bytes", k = 3 },
  where = { src_ip = internal, dst_ip = { not_in = internal } },
}
window "talkers" { size = "10s", topk = { field = "src_ip", by = "bytes", k = 10 } }
