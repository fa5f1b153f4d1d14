-- Exfiltration: one internal host sending far more to one external address
-- than it usually does.
--
-- Watches "egress" (scripts/detect_windows.lua): bytes per (source,
-- destination) in 60 s windows, every 10 s, of traffic from the internal
-- networks to anywhere else (the window's where; edit the list there), with a
-- per-pair baseline of those bytes.
--
-- Parameters:
--   above = 200e6      200 MB a minute to one address (27 Mbit/s): below this
--                      nothing is reported, whatever the history (the
--                      generator's background peaks near 50 MB).
--   ratio = 10         ten times the pair's own average, once it has one;
--                      a pair with under 6 windows of history only needs
--                      the 200 MB.
local ratio = 10

rule "exfiltration" {
  window = "egress",
  severity = "critical",
  value = "sum_bytes", above = 200e6,   -- checked in C: when() runs only past it
  baseline = { field = "sum_bytes", alpha = 0.05, warmup = 6 },
  when = function(w)
    local b = w.baseline
    return b.n < 6 or b.ratio > ratio
  end,
  raise_after = 1, clear_after = 3, cooldown = "10m",
  message = "{src_ip} sent {value} bytes to {dst_ip} in 60 s",
}
