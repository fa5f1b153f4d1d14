-- Heavy hitter: one source carrying a large share of all bytes.
--
-- Watches "talkers" (scripts/detect.lua): the top 10 sources by bytes in 10 s
-- windows (Space-Saving, with each item's share of the window's bytes). With
-- each = the top-k list, every listed source is judged as a key of its own.
--
-- Parameters:
--   share above 0.5  half of all bytes from one source. In the generator's
--                    background the largest share in 30 min is 0.38 (a busy
--                    server answering big downloads).
--   clear_after = 2, cooldown = "5m".
rule "heavy_hitter" {
  window = "talkers",
  each = "topk_bytes_src_ip",
  severity = "warning",
  value = "share", above = 0.5,
  raise_after = 1, clear_after = 2, cooldown = "5m",
  message = "{src_ip} sent {value} of all bytes in 10 s",
}
