"""The real captures and flow logs of ../shared/data replayed through the
detection pipeline (scripts/detect.lua) and the shipped rules: each raises
what a network engineer expects, with the key and time span the data README
gives, and the benign sample raises nothing of severity warning or above."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DATA = os.environ.get("NTA_DATA", os.path.join(os.path.dirname(h.ROOT), "shared", "data"))
DETECT = os.path.join(h.ROOT, "scripts", "detect.lua")


def replay_alerts(name):
    p = subprocess.run([h.NTA_RUN, "--replay", os.path.join(DATA, name), "--as-fast-as-possible",
                        DETECT], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    h.assert_clean_log(p.stderr)
    return [o for o in map(json.loads, p.stdout.splitlines())
            if o["type"] == "alert" and o["state"] == "raised"]


class ReplayRulesTest(unittest.TestCase):

    def test_masscan_is_a_vertical_port_scan_by_its_one_source(self):
        alerts = replay_alerts("esnet_masscan_tcp_0_1000_20190821.pcap")
        scans = [a for a in alerts if a["rule"].startswith("port_scan_vertical")]
        self.assertTrue(scans, alerts)
        self.assertEqual({a["key"]["src_ip"] for a in scans}, {"172.31.15.102"})
        self.assertEqual({a["key"]["dst_ip"] for a in scans}, {"198.124.152.15"})
        # The capture spans 10 s: the 5-minute window holds every probed port.
        slow = [a for a in scans if a["rule"] == "port_scan_vertical_slow"]
        self.assertEqual(len(slow), 1)
        self.assertGreaterEqual(slow[0]["value"], 1001 * 0.97)
        self.assertLessEqual(slow[0]["value"], 1001 * 1.03)

    def test_syn_flood_on_10_10_10_10(self):
        alerts = replay_alerts("stopddos_pkt.TCP.synflood.spoofed.pcap")
        floods = [a for a in alerts if a["rule"] == "syn_flood"]
        self.assertEqual([a["key"] for a in floods], [{"dst_ip": "10.10.10.10"}])
        # 37,841 SYNs from 37,623 sources over 23.7 s: the 10 s window that
        # raised holds a large part of them, and no more than all.
        self.assertGreater(floods[0]["value"], 10000)
        self.assertLessEqual(floods[0]["value"], 37623 * 1.05)
        self.assertFalse([a for a in alerts if a["rule"] != "syn_flood"], alerts)

    def test_zeek_nmap_log_names_the_scanner(self):
        alerts = replay_alerts("stratosphere_002_nmap_portscan_zeek_conn.json.log")
        scans = [a for a in alerts if a["rule"].startswith("port_scan")]
        self.assertGreater(len(scans), 0, alerts)
        self.assertEqual({a["key"]["src_ip"] for a in scans}, {"172.16.1.11"})
        # Several targets, as Nmap swept 182 hosts.
        self.assertGreater(len({a["key"]["dst_ip"] for a in scans}), 3)

    def test_cic_port_scan_by_172_16_0_1(self):
        alerts = replay_alerts("cicids2017_improved_Portscan_2500.csv")
        scans = [a for a in alerts if a["rule"].startswith("port_scan_vertical")]
        self.assertGreater(len(scans), 0, alerts)
        for a in scans:
            self.assertEqual(a["key"], {"src_ip": "172.16.0.1", "dst_ip": "192.168.10.50"})
            # The sample's flows are from 2017-07-07 (Friday afternoon).
            self.assertTrue(a["start_time"].startswith("2017-07-07"), a)

    def test_cic_benign_raises_nothing(self):
        alerts = replay_alerts("cicids2017_improved_BENIGN_2500.csv")
        self.assertEqual([a for a in alerts if a["severity"] in ("warning", "critical")], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
