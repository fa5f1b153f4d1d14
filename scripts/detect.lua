-- The detection pipeline: the windows the shipped rules in rules/ watch.
--
--   nta-run -b 127.0.0.1:19092 scripts/detect.lua      (Kafka in, results and alerts out)
--   nta-run scripts/detect.lua                          (no Kafka: synthetic traffic)
--   nta-run --fast scripts/detect.lua duration=600 inject=hscan@60+30
--                                                       (any gen_traffic.lua argument)
--   kill -HUP <pid>                                     (reload rules/ and this script)
--
-- Without -b the in-process generator feeds the pipeline; key=value arguments
-- of this script are passed on to it.
local gen = { "gen_traffic.lua", "rate=5000" }
for i = 1, #arg do
  local k = arg[i]:match("^([%w_]+)=")
  for j = #gen, 2, -1 do
    if gen[j]:match("^([%w_]+)=") == k then table.remove(gen, j) end
  end
  gen[#gen + 1] = arg[i]
end

input {
  topic = "network-traffic",
  generator = gen,
  lateness = "5s",
}
output { topic = "processed-data" }
rules "../rules"

require "detect_windows"
