-- pipeline_rules.lua: the benchmark of issue 3. The five windows of
-- pipeline5.lua ("traffic" and the top-k "talkers" come with the detection
-- windows), a quantile window, the windows of
-- scripts/detect.lua, and every shipped rule in rules/. Topics and lateness as
-- in pipeline5.lua.
--
--   nta-run -b ADDR -g GROUP --from beginning --until-end bench/pipeline_rules.lua \
--       topic=bench-in output=bench-out dlq=bench-dlq
input {
  topic = arg.topic or "network-traffic",
  dlq = arg.dlq or "network-traffic-dlq",
  format = "auto",
  lateness = "1h",
  idle_timeout = "1h",
}
output { topic = arg.output or "processed-data" }
rules "../rules"

window "by_src"   { key = "src_ip", size = "60s", slide = "10s", sum = { "bytes", "packets" } }
window "fanout"   { key = "src_ip", size = "30s", slide = "5s", distinct = "dst_port" }
window "by_proto" { key = "proto", size = "10s", sum = { "bytes", "packets" } }
window "by_dst"   { key = "dst_ip", size = "10s", sum = "bytes", distinct = "src_ip" }
window "sizes"    { size = "10s", quantiles = { field = "bytes", q = { 0.5, 0.95, 0.99 } } }

-- The detection windows, from scripts/ (this script's own directory is the
-- first entry of the module path).
local here = package.path:match("^(.-)/%?%.lua;")
package.path = here .. "/../scripts/?.lua;" .. package.path
require "detect_windows"
