-- SYN flood / DDoS: connection attempts to one target from many sources
-- (spoofed floods use a new source address per packet), or at a packet rate
-- no service sees in normal operation.
--
-- Watches "syn_to_target" (scripts/detect.lua): SYN-only TCP flows per
-- destination in 10 s windows, with distinct sources and packets.
--
-- Parameters:
--   sources = 1000   distinct sources in 10 s.
--   packets = 50000  SYN packets in 10 s (5000/s) whatever the sources.
--   raise_after = 1: a flood hurts from its first seconds.
local sources, packets = 1000, 50000

rule "syn_flood" {
  window = "syn_to_target",
  severity = "critical",
  value = "distinct_src_ip",
  when = function(w)
    return w.distinct_src_ip > sources or w.sum_packets > packets, w.distinct_src_ip
  end,
  raise_after = 1, clear_after = 2, cooldown = "2m",
  message = "SYN flood on {dst_ip}: {value} sources in 10 s",
}
