-- DNS / NTP amplification: large UDP responses from port 53 or 123 towards
-- one target, from many reflectors, which the target never asked for.
--
-- Watches "udp_reflection" (scripts/detect.lua): UDP from source port 53 or
-- 123 per destination in 10 s windows, bytes and distinct sources.
--
-- Parameters:
--   bytes = 5e6      5 MB in 10 s (4 Mbit/s) of DNS/NTP responses to one host;
--                    a busy resolver client receives a few hundred kB.
--   reflectors = 20  distinct sources: one resolver sending a big zone
--                    transfer is not an attack.
local bytes, reflectors = 5e6, 20

rule "amplification" {
  window = "udp_reflection",
  severity = "critical",
  value = "sum_bytes",
  when = function(w)
    return w.sum_bytes > bytes and w.distinct_src_ip >= reflectors
  end,
  raise_after = 1, clear_after = 2, cooldown = "2m",
  message = "amplification towards {dst_ip}: {value} bytes of DNS/NTP responses in 10 s",
}
