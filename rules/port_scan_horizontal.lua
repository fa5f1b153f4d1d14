-- Horizontal scan: one source probing one port on many hosts (worms, SSH
-- and RDP sweeps).
--
-- Watches "scan_horizontal" (scripts/detect.lua): connection attempts per
-- (source, destination port), distinct destination hosts in 30 s, every 10 s.
--
-- Parameters:
--   above = 1000     distinct hosts in 30 s on one port, with connection
--                    attempts only. A busy client's failed connections to web
--                    servers grow with the traffic: about 60 hosts in 30 s in
--                    the generator's background at 5000 records/s, 200 at
--                    20000 (make demo). A NAT gateway or a crawler may reach
--                    more; raise this where that is normal.
--   clear_after = 2, cooldown = "5m" as for the vertical scan.
rule "port_scan_horizontal" {
  window = "scan_horizontal",
  severity = "warning",
  value = "distinct_dst_ip", above = 1000,
  raise_after = 1, clear_after = 2, cooldown = "5m",
  message = "{src_ip} swept {value} hosts on port {dst_port} in 30 s",
}
