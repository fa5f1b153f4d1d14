-- Heavy hitter: one source carrying a large share of all bytes.
--
-- Watches "talkers" (scripts/detect.lua): the top 10 sources by bytes in 10 s
-- windows (Space-Saving, with each item's share of the window's bytes). With
-- each = the top-k list, every listed source is judged as a key of its own.
--
-- Parameters:
--   share above 0.8  four fifths of all bytes from one source. Flow sizes are
--                    heavy tailed: in 30 min of the generator's background at
--                    1000 records/s one server's big download reaches 0.67 of
--                    a window (0.38 at 2000 records/s).
--   min_total = 10e6 windows with under 10 MB (8 Mbit/s) are not judged: when
--                    the network is that quiet one flow is always "half of it".
--   clear_after = 2, cooldown = "5m".
rule "heavy_hitter" {
  window = "talkers",
  each = "topk_bytes_src_ip",
  severity = "warning",
  value = "share", above = 0.8, min_total = 10e6,
  raise_after = 1, clear_after = 2, cooldown = "5m",
  message = "{src_ip} sent {value} of all bytes in 10 s",
}
