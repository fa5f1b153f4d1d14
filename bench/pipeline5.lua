-- pipeline5.lua: the benchmark copy of scripts/pipeline.lua. The same five
-- windows; only the topics are arguments (the standard script fixes its input
-- to network-traffic), and lateness and idle_timeout are an hour so that the
-- result does not depend on how the consumer interleaves the partitions or on
-- a pause in the fetches: every window closes at the end-of-input flush.
--
--   nta-run -b ADDR -g GROUP --from beginning --until-end bench/pipeline5.lua \
--       topic=bench-in output=bench-out dlq=bench-dlq
input {
  topic = arg.topic or "network-traffic",
  dlq = arg.dlq or "network-traffic-dlq",
  format = "auto",
  lateness = "1h",
  idle_timeout = "1h",
}
output { topic = arg.output or "processed-data" }

window "by_src"   { key = "src_ip", size = "60s", slide = "10s", sum = { "bytes", "packets" } }
window "fanout"   { key = "src_ip", size = "30s", slide = "5s", distinct = "dst_port" }
window "traffic"  { size = "10s", count = true, sum = "bytes" }
window "by_proto" { key = "proto", size = "10s", sum = { "bytes", "packets" } }
window "by_dst"   { key = "dst_ip", size = "10s", sum = "bytes", distinct = "src_ip" }
