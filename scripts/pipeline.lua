-- The standard pipeline: records from the Kafka topic network-traffic, five
-- windows aggregated in C, results to processed-data.
--
--   nta-run -b 127.0.0.1:19092 scripts/pipeline.lua
--   nta-run scripts/pipeline.lua < records.jsonl      (no Kafka: stdin)
input {
  topic = "network-traffic",
  format = "auto",        -- json, csv, goflow2 or auto (per message)
  lateness = "5s",        -- watermark = highest event time seen - lateness
  idle_timeout = "5s",    -- quiet input: event time follows the wall clock
}
output { topic = "processed-data" }

window "by_src"   { key = "src_ip", size = "60s", slide = "10s", sum = { "bytes", "packets" } }
window "fanout"   { key = "src_ip", size = "30s", slide = "5s", distinct = "dst_port" }
window "traffic"  { size = "10s", count = true, sum = "bytes" }
window "by_proto" { key = "proto", size = "10s", sum = { "bytes", "packets" } }
window "by_dst"   { key = "dst_ip", size = "10s", sum = "bytes", distinct = "src_ip" }
