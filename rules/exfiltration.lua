-- Exfiltration: one internal host sending far more to one external address
-- than it usually does.
--
-- Watches "egress" (scripts/detect_windows.lua): bytes per internal host
-- (the window's where; edit the list of internal networks there) to
-- addresses outside, in 60 s windows every 10 s, with its top 3 destinations
-- by bytes (Misra-Gries: an item's bytes are under by at most 1/65 of the
-- host's total) and a per-host baseline of the host's egress. each judges
-- every listed destination as the key (src_ip, dst_ip).
--
-- Parameters:
--   above = 200e6      200 MB a minute to one address (27 Mbit/s): below this
--                      nothing is reported, whatever the history (the
--                      generator's background peaks near 50 MB).
--   ratio = 10         and the host's egress that minute is ten times its
--                      own average, once it has one; a host with under 6
--                      windows of history only needs the 200 MB.
local ratio = 10

rule "exfiltration" {
  window = "egress",
  each = "topk_bytes_dst_ip",
  severity = "critical",
  value = "value", above = 200e6,       -- the item's bytes; checked in C: when() runs past it
  baseline = { field = "sum_bytes", alpha = 0.05, warmup = 6 },
  when = function(w)
    local b = w.baseline
    return b.n < 6 or b.ratio > ratio
  end,
  raise_after = 1, clear_after = 3, cooldown = "10m",
  message = "{src_ip} sent {value} bytes to {dst_ip} in 60 s",
}
