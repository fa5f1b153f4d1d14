-- push.lua: the pipeline of bench/push.sh: the five windows of pipeline5.lua
-- (by_src, fanout, traffic, by_proto, by_dst) over the in-process generator.
--
--   nta-run --http 127.0.0.1:0 bench/push.lua rate=200000            (paced, for latency)
--   nta-run --fast --http 127.0.0.1:0 bench/push.lua count=5000000   (unpaced, for throughput)
local gen = { "../scripts/gen_traffic.lua", "rate=" .. (arg.rate or "200000") }
if arg.count then gen[#gen + 1] = "count=" .. arg.count end

input {
  generator = gen,
  -- A window closes once the watermark (newest event time - lateness) passes its end.
  lateness = "1s",
  idle_timeout = "2s",
}
output { print = false }

window "by_src"   { key = "src_ip", size = "60s", slide = "10s", sum = { "bytes", "packets" } }
window "fanout"   { key = "src_ip", size = "30s", slide = "5s", distinct = "dst_port" }
window "traffic"  { size = "10s", count = true, sum = "bytes" }
window "by_proto" { key = "proto", size = "10s", sum = { "bytes", "packets" } }
window "by_dst"   { key = "dst_ip", size = "10s", sum = "bytes", distinct = "src_ip" }
