-- Exfiltration: one internal host sending far more to one external address
-- than it usually does.
--
-- Watches "egress" (scripts/detect.lua): bytes per (source, destination) in
-- 60 s windows, every 10 s, with a per-pair baseline of those bytes.
--
-- Parameters:
--   above = 200e6      200 MB a minute to one address (27 Mbit/s): below this
--                      nothing is reported, whatever the history (the
--                      generator's background peaks near 50 MB).
--   ratio = 10         ten times the pair's own average, once it has one;
--                      a pair never seen before only needs min_bytes.
local ratio = 10

local function internal(ip)
  return ip:find("^10%.") or ip:find("^192%.168%.") or
         (ip:find("^172%.") and tonumber(ip:match("^172%.(%d+)")) >= 16 and
          tonumber(ip:match("^172%.(%d+)")) <= 31)
end

rule "exfiltration" {
  window = "egress",
  severity = "critical",
  value = "sum_bytes", above = 200e6,   -- checked in C: when() runs only past it
  baseline = { field = "sum_bytes", alpha = 0.05, warmup = 6 },
  when = function(w)
    if not internal(w.key.src_ip) or internal(w.key.dst_ip) then return false end
    local b = w.baseline
    return b.n < 6 or b.ratio > ratio
  end,
  raise_after = 1, clear_after = 3, cooldown = "10m",
  message = "{src_ip} sent {value} bytes to {dst_ip} in 60 s",
}
