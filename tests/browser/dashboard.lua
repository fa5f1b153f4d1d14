-- The pipeline the dashboard tests run: the demo's windows with short sizes,
-- so every panel has data within seconds, over the generator with a port
-- scan injected from the 4th second on.
input {
  generator = { "../../scripts/gen_traffic.lua", "rate=4000", "inject=portscan@4+600" },
  lateness = "500ms",
  idle_timeout = "2s",
}
output { print = false }

window "traffic"  { size = "2s", sum = { "bytes", "packets" } }
window "by_src"   { key = "src_ip", size = "4s", slide = "2s", sum = { "bytes", "packets" } }
window "fanout"   { key = "src_ip", size = "4s", slide = "2s", distinct = "dst_port" }
window "by_proto" { key = "proto", size = "2s", sum = "bytes" }
window "by_dst"   { key = "dst_ip", size = "2s", sum = "bytes", distinct = "src_ip" }
-- What a vertical port scan rule watches: connection attempts per (source, target).
window "scan_vertical" { key = { "src_ip", "dst_ip" }, size = "4s", slide = "2s",
                         where = { proto = 6, tcp_flags = { 0, 2 } }, distinct = "dst_port" }
