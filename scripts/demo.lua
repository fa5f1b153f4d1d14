-- The demo: the standard windows over synthetic traffic from
-- scripts/gen_traffic.lua, with a port scan and a flood injected.
--
--   nta-run scripts/demo.lua                    (no Kafka: generator in-process)
--   nta-run -b 127.0.0.1:19092 scripts/demo.lua (reads network-traffic instead)
input {
  topic = "network-traffic",
  generator = { "gen_traffic.lua", "rate=20000", "inject=portscan@30+20,flood@70+20" },
  lateness = "2s",
}
output { topic = "processed-data", print = false }
-- The shipped detections, and the windows they watch: alerts show on the
-- dashboard.
rules "../rules"
require "detect_windows"

window "by_src"   { key = "src_ip", size = "60s", slide = "10s", sum = { "bytes", "packets" } }
window "fanout"   { key = "src_ip", size = "30s", slide = "5s", distinct = "dst_port" }
window "by_proto" { key = "proto", size = "10s", sum = "bytes" }
window "by_dst"   { key = "dst_ip", size = "10s", sum = "bytes", distinct = "src_ip" }

-- Called once per window result, never per record.
local fmt = string.format
function on_window(w)
  if w.window == "traffic" then
    print(fmt("%s  %8d flows  %8.1f Mbit/s", os.date("!%H:%M:%S", w["end"] / 1000),
              w.count, w.sum_bytes * 8 / 10 / 1e6))
  elseif w.window == "scan_vertical" and w.distinct_dst_port > 1000 then
    print(fmt("  port scan? %s probed %d ports of %s in 30s", w.key.src_ip, w.distinct_dst_port,
              w.key.dst_ip))
  elseif w.window == "by_dst" and w.distinct_src_ip > 5000 then
    print(fmt("  many sources: %s from %d sources in 10s", w.key.dst_ip, w.distinct_src_ip))
  end
end
