-- Vertical port scan: one source probing many ports of one target.
--
-- Watches "scan_vertical" (scripts/detect.lua): connection attempts
-- (SYN-only TCP flows) per (source, target), distinct destination ports in
-- 30 s, every 10 s.
--
-- Parameters:
--   above = 100      distinct ports in 30 s. nmap's default scan probes 1000
--                    ports; a client talking to one server uses a handful.
--   raise_after = 1  the first window over the threshold raises (scans are short).
--   clear_after = 2  two quiet windows (20 s) clear it.
--   cooldown = "5m"  no second raise for the same pair within 5 minutes of a clear.
rule "port_scan_vertical" {
  window = "scan_vertical",
  severity = "warning",
  value = "distinct_dst_port", above = 100,
  raise_after = 1, clear_after = 2, cooldown = "5m",
  message = "{src_ip} probed {value} ports of {dst_ip} in 30 s",
}

-- The slow variant: the same over 5 minutes, for scans paced under the 30 s
-- threshold (nmap -T2, or the Zeek capture in shared/data, ~100 ports in 5 min).
--   above = 50       distinct ports in 5 min; a client uses one or two per server.
rule "port_scan_vertical_slow" {
  window = "scan_vertical_slow",
  severity = "warning",
  value = "distinct_dst_port", above = 50,
  raise_after = 1, clear_after = 2, cooldown = "15m",
  message = "{src_ip} probed {value} ports of {dst_ip} in 5 min",
}
