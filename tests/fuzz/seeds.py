#!/usr/bin/python3
"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/):
small valid inputs of every shape the readers and decoders handle, so that
libFuzzer starts from deep inside each parser. Run it from the repository
root after changing it; the files are committed. Crash inputs found by
fuzzing are added to the corpus by hand (named crash-*), next to these."""
import os
import struct

DATA = os.environ.get("NTA_DATA", "/work/shared/data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def pcap_head(path, npackets):
    with open(path, "rb") as f:
        data = f.read()
    off = 24
    for _ in range(npackets):
        incl, = struct.unpack("<I", data[off + 8:off + 12])
        off += 16 + incl
    return data[:off]


def pcap(linktype, packets, nano=False, big=False):
    e = ">" if big else "<"
    out = struct.pack(e + "IHHiIII", 0xa1b23c4d if nano else 0xa1b2c3d4, 2, 4, 0, 0, 65535,
                      linktype)
    for i, p in enumerate(packets):
        out += struct.pack(e + "IIII", 1700000000 + i, 500 * i, len(p), len(p)) + p
    return out


def ipv4(proto, payload, frag=0, ident=1):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + payload


def ipv6(nh, payload):
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + src + dst + payload


TCP_SYN = struct.pack("!HHIIBBHHH", 40000, 443, 1, 0, 0x50, 0x02, 1024, 0, 0)
UDP = struct.pack("!HHHH", 5353, 53, 12, 0) + b"abcd"
ETH = b"\x00" * 12


def main():
    write("pcap", "masscan_head.pcap", pcap_head(os.path.join(DATA,
          "esnet_masscan_tcp_0_1000_20190821.pcap"), 6))
    write("pcap", "synflood_head.pcap", pcap_head(os.path.join(DATA,
          "stopddos_pkt.TCP.synflood.spoofed.pcap"), 4))
    qinq = ETH + b"\x88\xa8\x00\x64\x81\x00\x03\xaf\x08\x00" + ipv4(6, TCP_SYN)
    write("pcap", "qinq_tcp.pcap", pcap(1, [qinq, qinq]))
    hop = bytes([60, 0]) + b"\x00" * 6 + bytes([44, 0]) + b"\x00" * 6
    frag6 = bytes([17, 0, 0, 1]) + b"\xde\xad\xbe\xef"
    write("pcap", "sll_ipv6_ext.pcap",
          pcap(113, [b"\x00" * 14 + b"\x86\xdd" + ipv6(0, hop + frag6 + UDP)]))
    write("pcap", "raw_fragments.pcap",
          pcap(101, [ipv4(17, UDP, frag=0x2000, ident=7), ipv4(17, b"x" * 16, frag=2, ident=7),
                     ipv4(1, b"\x08\x00\x00\x00")], nano=True, big=True))
    write("pcap", "sll2_icmp6.pcap",
          pcap(276, [b"\x86\xdd" + b"\x00" * 18 + ipv6(58, b"\x80\x00\x00\x00")]))
    # pcapng: section header, interface description (Ethernet), one enhanced packet.
    pkt = ETH + b"\x08\x00" + ipv4(6, TCP_SYN)
    pad = (4 - len(pkt) % 4) % 4
    shb = struct.pack("<IIIHHq", 0x0a0d0d0a, 28, 0x1a2b3c4d, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 65535) + struct.pack("<I", 20)
    epb_len = 32 + len(pkt) + pad
    epb = (struct.pack("<IIIIIII", 6, epb_len, 0, 0x00060a0b, 0x0c0d0e0f, len(pkt), len(pkt)) +
           pkt + b"\x00" * pad + struct.pack("<I", epb_len))
    write("pcap", "ethernet.pcapng", shb + idb + epb)
    write("pcap", "cut.pcap", pcap(1, [qinq])[:-7])

    with open(os.path.join(DATA, "stratosphere_002_nmap_portscan_zeek_conn.json.log")) as f:
        write("zeek", "conn_head.json.log", "".join(f.readline() for _ in range(3)))
    write("zeek", "conn.tsv.log",
          "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
          "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state\t"
          "history\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\n"
          "1664462457.5\tC2\t172.16.1.11\t50000\t10.0.0.5\t22\ttcp\tREJ\tShR\t1\t44\t1\t40\n"
          "1664462458\tC3\t::1\t8\t::2\t0\ticmp\tOTH\t(empty)\t1\t84\t0\t-\n"
          "#close\t2022-09-29-16-00-00\n")

    for name in ("cicids2017_improved_Portscan_2500.csv", "cicids2017_improved_BENIGN_2500.csv"):
        with open(os.path.join(DATA, name)) as f:
            write("cic", name.replace(".csv", "_head.csv"),
                  "".join(f.readline() for _ in range(3)))
    write("cic", "cic2017_style.csv",
          "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, "
          "Timestamp, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets, "
          "SYN Flag Count, Label\n"
          "x,172.16.0.1,41249,192.168.10.50,2042,6,7/7/2017 6:08:57 PM,1,1.0,0,1,PortScan\n")

    goflow2 = ('{"type":"IPFIX","time_received_ns":1700000000000000000,"sampling_rate":2,'
               '"time_flow_end_ns":1700000001500000000,"bytes":100,"packets":1,"src_addr":'
               '"10.0.0.1","dst_addr":"10.0.0.2","etype":"IPv4","proto":6,"src_port":1,'
               '"dst_port":2,"tcp_flags":18,"as_path":[1,2]}')
    goflow1 = ('{"Type":"NETFLOW_V9","TimeReceived":1700000000,"SamplingRate":0,'
               '"TimeFlowStartMs":1699999999000,"Bytes":64,"Packets":1,"SrcAddr":"2001:db8::1",'
               '"DstAddr":"2001:db8::2","Proto":17,"SrcPort":53,"DstPort":40000,"TCPFlags":0}')
    nta = ('{"ts":1700000002000,"src_ip":"10.0.0.3","dst_ip":"10.0.0.4","src_port":5,'
           '"dst_port":80,"proto":"tcp","bytes":7,"packets":1,"tcp_flags":"SA"}')
    write("jsonl", "mixed.jsonl", "\n".join([goflow2, goflow1, nta, ""]))
    write("decode", "goflow2.json", goflow2)
    write("decode", "goflow1.json", goflow1)
    write("decode", "nta.json", nta)
    write("decode", "rfc3339.json", '{"time":"2023-11-14T22:13:20.5+01:00","src":"1.2.3.4",'
          '"dst":"5.6.7.8","protocol":"udp","bytes_sent":"12"}')
    write("decode", "classic.csv", "10.0.0.1,10.0.0.2,1500")
    write("decode", "header.csv", 'ts,src_ip,dst_ip,dst_port,bytes\n1700000000000,10.0.0.1,'
          '"10.0.0.2",443,1500\n1700000000.5,::1,::2,,7')


if __name__ == "__main__":
    main()
