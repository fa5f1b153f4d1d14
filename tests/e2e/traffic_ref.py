"""Independent readers of the traffic files nta replays, for the replay tests.

Written from the file format specifications (pcap: the libpcap file format;
Zeek conn.log; CICFlowMeter CSV) with Python's standard library only, sharing
nothing with runtime/reader*.c, so that a test comparing nta's window results
with nta_batch.compute(records) over these records checks the C readers.

Records are the dicts nta_batch takes: ts (epoch ms), src_ip, dst_ip,
src_port, dst_port, proto, bytes, packets, tcp_flags. The conventions are the
ones README.md documents for replay: bytes = IP total length, ICMP type/code
in the ports, Zeek and CIC records with the originator as source.
"""
import collections
import csv
import datetime
import decimal
import ipaddress
import json
import os
import struct

DATA = os.environ.get("NTA_DATA", "/work/shared/data")
MASSCAN = os.path.join(DATA, "esnet_masscan_tcp_0_1000_20190821.pcap")
SYNFLOOD = os.path.join(DATA, "stopddos_pkt.TCP.synflood.spoofed.pcap")
ZEEK = os.path.join(DATA, "stratosphere_002_nmap_portscan_zeek_conn.json.log")
CIC_SCAN = os.path.join(DATA, "cicids2017_improved_Portscan_2500.csv")
CIC_BENIGN = os.path.join(DATA, "cicids2017_improved_BENIGN_2500.csv")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


# ---- pcap -------------------------------------------------------------------

def _ip_packet(p, rec):
    """Fills rec from an IP packet; False if it is not IPv4/IPv6."""
    version = p[0] >> 4
    if version == 4:
        ihl = (p[0] & 15) * 4
        total, = struct.unpack("!H", p[2:4])
        frag, = struct.unpack("!H", p[6:8])
        rec["proto"] = p[9]
        rec["src_ip"] = str(ipaddress.IPv4Address(p[12:16]))
        rec["dst_ip"] = str(ipaddress.IPv4Address(p[16:20]))
        rec["bytes"] = total
        if frag & 0x1fff:
            raise ValueError("fragments are not in the shared captures")
        l4 = p[ihl:total]
    elif version == 6:
        plen, = struct.unpack("!H", p[4:6])
        rec["proto"] = p[6]
        rec["src_ip"] = str(ipaddress.IPv6Address(p[8:24]))
        rec["dst_ip"] = str(ipaddress.IPv6Address(p[24:40]))
        rec["bytes"] = 40 + plen
        if rec["proto"] in (0, 43, 44, 60):
            raise ValueError("IPv6 extension headers are not in the shared captures")
        l4 = p[40:40 + plen]
    else:
        return False
    if rec["proto"] in (6, 17):
        rec["src_port"], rec["dst_port"] = struct.unpack("!HH", l4[0:4])
        if rec["proto"] == 6:
            rec["tcp_flags"] = l4[13]
    elif rec["proto"] in (1, 58):
        rec["src_port"], rec["dst_port"] = l4[0], l4[1]
    return True


def read_pcap(path):
    """(packets, truncated): one record per IP packet (plus 'us', the time in
    microseconds), and whether the file ends inside a packet."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    endian, nano = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
                    b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True)}[magic]
    linktype, = struct.unpack(endian + "I", data[20:24])
    off = 24
    out = []
    truncated = False
    while off < len(data):
        if off + 16 > len(data):
            truncated = True
            break
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            truncated = True
            break
        p = data[off:off + incl]
        off += incl
        us = sec * 1000000 + (frac // 1000 if nano else frac)
        if linktype == 1:  # Ethernet, VLAN tags peeled
            etype, = struct.unpack("!H", p[12:14])
            p = p[14:]
            while etype in (0x8100, 0x88a8):
                etype, = struct.unpack("!H", p[2:4])
                p = p[4:]
            if etype not in (0x0800, 0x86dd):
                continue
        elif linktype != 101:
            raise ValueError("link type %d not handled by the reference" % linktype)
        rec = {"ts": us // 1000, "us": us, "src_port": 0, "dst_port": 0, "tcp_flags": 0,
               "packets": 1}
        if _ip_packet(p, rec):
            out.append(rec)
    return out, truncated


def build_flows(packets, active_ms=60000, idle_ms=15000):
    """Unidirectional 5-tuple flows as a flow exporter builds them, with the
    time of the last packet as the record time."""
    active, idle = active_ms * 1000, idle_ms * 1000
    table = collections.OrderedDict()  # least recently seen first
    out = []

    def export(f):
        out.append({"ts": f["last"] // 1000, "src_ip": f["k"][0], "dst_ip": f["k"][1],
                    "src_port": f["k"][2], "dst_port": f["k"][3], "proto": f["k"][4],
                    "bytes": f["bytes"], "packets": f["packets"], "tcp_flags": f["flags"]})

    for p in packets:
        t = p["us"]
        while table:
            k, f = next(iter(table.items()))
            if f["last"] + idle > t:
                break
            export(f)
            del table[k]
        k = (p["src_ip"], p["dst_ip"], p["src_port"], p["dst_port"], p["proto"])
        f = table.get(k)
        if f is not None and t - f["first"] >= active:
            export(f)
            del table[k]
            f = None
        if f is None:
            f = table[k] = {"k": k, "first": t, "last": t, "bytes": 0, "packets": 0, "flags": 0}
        else:
            table.move_to_end(k)
        f["last"] = max(f["last"], t)
        f["bytes"] += p["bytes"]
        f["packets"] += 1
        f["flags"] |= p["tcp_flags"]
    for f in table.values():
        export(f)
    return out


# ---- Zeek conn.log (JSON lines) ------------------------------------------------

_HISTORY = {"s": 0x02, "h": 0x12, "a": 0x10, "d": 0x10, "f": 0x01, "r": 0x04}
_PROTO = {"tcp": 6, "udp": 17, "icmp": 1}


def read_zeek_json(path):
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            o = json.loads(line, parse_float=decimal.Decimal)
            ts = decimal.Decimal(o["ts"]) * 1000
            if "orig_ip_bytes" in o or "resp_ip_bytes" in o:
                nbytes = o.get("orig_ip_bytes", 0) + o.get("resp_ip_bytes", 0)
            else:
                nbytes = o.get("orig_bytes", 0) + o.get("resp_bytes", 0)
            flags = 0
            if o["proto"] == "tcp":
                for ch in o.get("history", ""):
                    flags |= _HISTORY.get(ch.lower(), 0)
            out.append({"ts": int(ts), "src_ip": o["id.orig_h"], "dst_ip": o["id.resp_h"],
                        "src_port": o["id.orig_p"], "dst_port": o["id.resp_p"],
                        "proto": _PROTO[o["proto"]], "bytes": nbytes,
                        "packets": o.get("orig_pkts", 0) + o.get("resp_pkts", 0),
                        "tcp_flags": flags})
    return out


# ---- CICFlowMeter CSV ---------------------------------------------------------------

_CIC_FLAGS = [("FIN Flag Count", 0x01), ("SYN Flag Count", 0x02), ("RST Flag Count", 0x04),
              ("PSH Flag Count", 0x08), ("ACK Flag Count", 0x10), ("URG Flag Count", 0x20),
              ("ECE Flag Count", 0x40), ("CWR Flag Count", 0x80)]


def read_cic(path):
    out = []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = [h.strip() for h in next(rows)]
        for row in rows:
            r = dict(zip(header, (v.strip() for v in row)))
            text = r["Timestamp"]
            fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
            t = datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)
            delta = t - _EPOCH
            ms = (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
            flags = 0
            for name, bit in _CIC_FLAGS:
                if name in r and int(float(r[name])) > 0:
                    flags |= bit
            out.append({"ts": ms, "src_ip": r["Src IP"], "dst_ip": r["Dst IP"],
                        "src_port": int(r["Src Port"]), "dst_port": int(r["Dst Port"]),
                        "proto": int(r["Protocol"]),
                        "bytes": int(float(r["Total Length of Fwd Packet"])) +
                        int(float(r["Total Length of Bwd Packet"])),
                        "packets": int(float(r["Total Fwd Packet"])) +
                        int(float(r["Total Bwd packets"])),
                        "tcp_flags": flags})
    return out
