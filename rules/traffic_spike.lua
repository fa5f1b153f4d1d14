-- Traffic spike and sudden drop or outage, against the total volume's own
-- recent history.
--
-- Watches "traffic" (scripts/detect.lua): all bytes in 10 s windows. The
-- baseline is an exponentially weighted mean and variance of sum_bytes over
-- past windows (alpha 0.1: about the last 10 windows weigh most), kept in C
-- across reloads. "ratio" is this window's bytes over the baseline mean, "z"
-- its distance from the mean in standard deviations. Flow sizes are heavy
-- tailed, so z swings widely in normal traffic (up to 12 in 30 min of the
-- generator's background); the ratio is the steadier signal.
--
-- A window that trips either rule does not move the baseline, so a spike or
-- an outage that lasts stays an alert until it ends.
--
-- Parameters:
--   spike: ratio above 4   four times the recent volume (the generator's
--                          background reaches 3.9 once in 30 min at 1000
--                          records/s: fewer flows per window, more variance).
--   drop:  ratio below 0.3 under a third of it. A window in which nothing at
--          all arrived counts as 0 bytes, so a dead link reads as a drop.
--   warmup = 12            two minutes of history before judging.
--   quiet = 10e6           bytes per 10 s (8 Mbit/s) below which volume is too
--                          low to judge: a sparse flow log swings by orders of
--                          magnitude between windows without anything wrong.
local quiet = 10e6
rule "traffic_spike" {
  window = "traffic",
  severity = "warning",
  value = "ratio", above = 4,
  baseline = { field = "sum_bytes", alpha = 0.1, warmup = 12 },
  when = function(w) return w.sum_bytes > quiet end,
  raise_after = 1, clear_after = 2, cooldown = "5m",
  message = "traffic at {value} times its recent level",
}

rule "traffic_drop" {
  window = "traffic",
  severity = "critical",
  value = "ratio", below = 0.3,
  baseline = { field = "sum_bytes", alpha = 0.1, warmup = 12 },
  when = function(w) return w.baseline.mean > quiet end,
  raise_after = 1, clear_after = 2, cooldown = "5m",
  message = "traffic fell to {value} of its recent level",
}
