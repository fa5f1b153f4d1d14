--[[ gen_traffic.lua: realistic synthetic background traffic, with anomalies on demand.

A generator script for nta-run. Each record is one unidirectional flow (as a
NetFlow/IPFIX exporter reports it), emitted through the runtime's emit().

USAGE
  nta-run -b 127.0.0.1:19092 scripts/gen_traffic.lua rate=50000 duration=60 format=json inject=portscan@20+10
  nta-run -b 127.0.0.1:19092 scripts/gen_traffic.lua rate=20000 count=1000000 seed=7 \
      'inject=portscan@60+30,flood@120+20:target=10.0.0.5;share=0.3'
  (quote inject= in a shell when it holds ';')

OPTIONS (key=value; an unknown key or a bad value is an error)
  rate=N        records per second of event time (> 0)                  default 1000
  duration=S    run length in seconds; count = round(rate * duration)   default unbounded
  count=N       total records (integer >= 1); not together with duration
  format=F      json | csv | goflow2 (the runtime encodes)               default json
  topic=T       Kafka topic                                              default network-traffic
  start=MS      event time of the first record, epoch ms (integer)       default now
  seed=N        PRNG seed, integer 0..2^53; same args -> same records    default 1
  hosts=N       internal client hosts (1..60000)                         default 400
  servers=N     external web servers (1..100000)                         default 3000
  swing=X       peak/trough ratio of the daily byte swing (>= 1; 1 = off) default 3
  peak_hour=H   UTC hour of the daily peak (0 <= H < 24)                 default 15
  inject=LIST   anomalies, see below                                     default none

TRAFFIC MODEL
  Internal network 10.0.0.0/16: `hosts` clients spread over 10.0.0.0-10.0.15.255
  (over the whole /16 past 4061 hosts) with Zipf (s = 1) popularity, plus servers 10.0.0.5 (public web), 10.0.0.25
  (mail) and 10.0.0.53 (resolver). External: `servers` public-looking web
  servers (Zipf, s = 1), 3000 external web clients (Zipf), a few DNS, NTP, mail
  and SSH servers. Every connection yields a request flow client->server
  (ephemeral source port 32768-60999) and, in the next record, the response
  flow server->client. Share of connections:
      https tcp/443 44%   quic udp/443 10%   http tcp/80 8%   dns udp/53 20%
      ntp udp/123 2%      ssh tcp/22 2%      smtp tcp/25 2% (1% out, 1% in)
      imaps tcp/993 3%    inbound https/http to 10.0.0.5 6%   icmp echo 2%
  About 60% of the records carry port 443.
  Payload sizes are log-normal (heavy tail; e.g. https responses median 12 kB,
  sigma 2). Packets follow from the payload: ceil(payload/MSS) data packets
  plus handshake, FIN and ACK packets; TCP bytes = payload + 52 per packet
  (UDP 28, QUIC 48), so every record has 28 <= bytes/packets <= 1500 (TCP >= 40).
  TCP outcomes: 90% complete (flags SYN|ACK|PSH|FIN = 27 both ways), 2% mid-flow
  exports of long flows (ACK|PSH = 24), 4% reset (30 / 26), 3% refused (SYN 2,
  answered RST|ACK 20), 1% unanswered SYN (no response record). Non-TCP flags 0;
  ICMP ports 0. 2% of DNS queries and ICMP echoes get no answer.
  Daily swing: the payload of bulk services (web, quic, ssh, mail) is scaled by
  swing^(cos(2*pi*(hour - peak_hour)/24) / 2) with hour the UTC time of day of
  the record's ts: peak/trough = swing, geometric mean 1. Only bytes (and the
  packets that follow from them) swing; the record rate is the runtime's.

ANOMALIES: inject=KIND@START+DURATION[:key=value;key=value],...
  START and DURATION in seconds relative to the event time of the first record
  (the first t0 the runtime passes). While an anomaly is active, a share of the
  records is replaced by anomaly records (shares of overlapping anomalies add up,
  in list order). spike and drop instead modify the ordinary records. Every
  kind accepts share= (0 < share <= 1). Addresses are dotted IPv4. Defaults:
  portscan     vertical scan: src=203.0.113.66 target=10.0.1.10 order=seq|random
               (dst ports 1..65535 in order, or random), SYN (2), 1 packet,
               40-60 bytes, tcp, one fixed source port. share=0.1
  hscan        horizontal scan: src=203.0.113.67 net=10.0.0.0/16 port=22
               order=seq|random over the hosts of net, SYN only, 1 packet,
               40-60 bytes. share=0.1
  flood        SYN flood: sources uniform over the whole IPv4 space (spoofed),
               random source ports, target=10.0.0.5 port=80, SYN, 1 packet,
               40-60 bytes. share=0.1
  amplification  UDP reflection: sources=1000 public reflectors, src port
               port=53 (e.g. port=123 for NTP), target=10.0.0.5, random dst
               port, 3000-4000 bytes in ceil(bytes/1500) packets. share=0.1
  heavy        heavy hitter: src=10.0.3.7 target=192.0.2.10 port=443, complete
               TCP flows (27) of 1-10 MB. share=0.1
  exfil        exfiltration: src=10.0.2.20 target=198.51.100.77 port=443,
               complete TCP uploads of 2-20 MB. share=0.1
  spike        volume spike: the payload of ordinary bulk records (the ones
               the daily swing scales) times factor=5, so their bytes grow
               about 5x. share=1 (the share of ordinary records scaled)
  drop         outage: the runtime needs exactly n records per call, so an
               outage is a collapse in bytes, not in records: the payload of
               ordinary bulk records times factor=0.05; flows shrink to little
               more than their headers. share=1
  A scaled request's response (the next background record) keeps the request's
  scale, so the first record after a spike or drop may still be scaled.
  target= may also be written dst=.

DETERMINISM
  Two xorshift128 streams seeded from seed=: stream A draws the background,
  stream B the anomalies. The background draws the same numbers whether or not
  anomalies are injected, so outside the anomaly intervals the records are the
  same with and without inject=; how the runtime splits the records into
  generate() calls does not change them either.
]]

local bit = bit or require("bit")
local band, bxor, lshift, rshift = bit.band, bit.bxor, bit.lshift, bit.rshift
local floor, ceil, exp, log, sqrt = math.floor, math.ceil, math.exp, math.log, math.sqrt
local cos, sin, pi = math.cos, math.sin, math.pi

local function fail(fmt, ...)
    error("gen_traffic: " .. string.format(fmt, ...), 0)
end

---------------------------------------------------------------------------
-- PRNG: two xorshift128 streams on 32-bit words (LuaJIT bit ops stay int32,
-- so the hot path never boxes a number). Seeding goes through a 32-bit
-- multiply done exactly in doubles, init time only.

local TWO32 = 4294967296
local INV32 = 1 / TWO32

local function mul32(a, b) -- (a * b) mod 2^32 for a, b in [0, 2^32)
    local al, ah = a % 65536, floor(a / 65536)
    return (al * b + ((ah * b) % 65536) * 65536) % TWO32
end

local function fmix32(h) -- murmur3 finalizer, h in [0, 2^32)
    h = bxor(h, rshift(h, 16)) % TWO32
    h = mul32(h, 0x85ebca6b)
    h = bxor(h, rshift(h, 13)) % TWO32
    h = mul32(h, 0xc2b2ae35)
    return bxor(h, rshift(h, 16)) % TWO32
end

-- Four state words from (seed, stream); never all zero.
local function seed_words(seed, stream)
    local lo, hi = seed % TWO32, floor(seed / TWO32)
    local w = {}
    for i = 1, 4 do
        w[i] = bit.tobit(fmix32((fmix32((lo + i * 0x9e3779b9) % TWO32) + hi * 0x632be5ab + stream * 0x1b873593) % TWO32))
    end
    if w[1] == 0 and w[2] == 0 and w[3] == 0 and w[4] == 0 then w[1] = 1 end
    return w[1], w[2], w[3], w[4]
end

local a0, a1, a2, a3 = 1, 2, 3, 4 -- stream A: background
local b0, b1, b2, b3 = 5, 6, 7, 8 -- stream B: anomalies

local function rnd_a() -- signed int32
    local t = bxor(a0, lshift(a0, 11))
    a0, a1, a2 = a1, a2, a3
    a3 = bxor(a3, rshift(a3, 19), t, rshift(t, 8))
    return a3
end
local function unif_a() -- [0, 1)
    return rnd_a() * INV32 + 0.5
end
local function rnd_b()
    local t = bxor(b0, lshift(b0, 11))
    b0, b1, b2 = b1, b2, b3
    b3 = bxor(b3, rshift(b3, 19), t, rshift(t, 8))
    return b3
end
local function unif_b()
    return rnd_b() * INV32 + 0.5
end

---------------------------------------------------------------------------
-- Options: declared once; parsing, checking and the error messages come from
-- this table.

local function parse_number(key, s, o)
    local v = tonumber(s)
    if v == nil or v ~= v or v == math.huge or v == -math.huge then
        fail("%s=%s: not a number", key, s)
    end
    if o.integer and v ~= floor(v) then fail("%s=%s: must be an integer", key, s) end
    if o.gt ~= nil and not (v > o.gt) then fail("%s=%s: must be > %s", key, s, o.gt) end
    if o.min ~= nil and v < o.min then fail("%s=%s: must be >= %s", key, s, o.min) end
    if o.max ~= nil and v > o.max then fail("%s=%s: must be <= %s", key, s, o.max) end
    if o.lt ~= nil and not (v < o.lt) then fail("%s=%s: must be < %s", key, s, o.lt) end
    return v
end

local OPTIONS = {
    { name = "rate", type = "number", gt = 0, default = 1000 },
    { name = "duration", type = "number", gt = 0 },
    { name = "count", type = "number", integer = true, min = 1, max = 2 ^ 53 },
    { name = "format", type = "enum", values = { json = true, csv = true, goflow2 = true }, default = "json" },
    { name = "topic", type = "string", default = "network-traffic" },
    { name = "start", type = "number", integer = true, min = 0, max = 2 ^ 53 },
    { name = "seed", type = "number", integer = true, min = 0, max = 2 ^ 53, default = 1 },
    { name = "hosts", type = "number", integer = true, min = 1, max = 60000, default = 400 },
    { name = "servers", type = "number", integer = true, min = 1, max = 100000, default = 3000 },
    { name = "swing", type = "number", min = 1, max = 1000, default = 3 },
    { name = "peak_hour", type = "number", min = 0, lt = 24, default = 15 },
    { name = "inject", type = "string", default = "" },
}

local function known_keys()
    local t = {}
    for _, o in ipairs(OPTIONS) do t[#t + 1] = o.name end
    return table.concat(t, ", ")
end

-- arg.key for key=value arguments; positional strings that look like
-- key=value are accepted too (whichever way the runtime passes them).
local function collect_args(A)
    local given = {}
    A = A or {}
    for k, v in pairs(A) do
        if type(k) == "string" then given[k] = tostring(v) end
    end
    local i = 1
    while A[i] ~= nil do
        local s = tostring(A[i])
        local k, v = s:match("^([%a_][%w_]*)=(.*)$")
        if k == nil then
            fail("unexpected argument '%s': options are key=value (keys: %s)", s, known_keys())
        end
        if given[k] ~= nil and given[k] ~= v then
            fail("%s given twice ('%s' and '%s')", k, given[k], v)
        end
        given[k] = v
        i = i + 1
    end
    return given
end

local function parse_options(A)
    local given = collect_args(A)
    local byname = {}
    for _, o in ipairs(OPTIONS) do byname[o.name] = o end
    local names = {}
    for k in pairs(given) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
        if byname[k] == nil then fail("unknown option '%s' (known: %s)", k, known_keys()) end
    end
    local opt = {}
    for _, o in ipairs(OPTIONS) do
        local s = given[o.name]
        if s == nil then
            opt[o.name] = o.default
        elseif o.type == "number" then
            opt[o.name] = parse_number(o.name, s, o)
        elseif o.type == "enum" then
            if not o.values[s] then
                local v = {}
                for name in pairs(o.values) do v[#v + 1] = name end
                table.sort(v)
                fail("%s=%s: must be one of %s", o.name, s, table.concat(v, ", "))
            end
            opt[o.name] = s
        else
            if s == "" and o.name ~= "inject" then fail("%s= must not be empty", o.name) end
            opt[o.name] = s
        end
    end
    if opt.count ~= nil and opt.duration ~= nil then
        fail("give count= or duration=, not both")
    end
    if opt.duration ~= nil then
        opt.count = floor(opt.rate * opt.duration + 0.5)
        if opt.count < 1 then
            fail("rate=%s duration=%s: less than one record", given.rate or opt.rate, given.duration)
        end
    end
    return opt
end

---------------------------------------------------------------------------
-- Addresses (unsigned 32-bit host order, as plain numbers).

local function ip(a, b, c, d)
    return ((a * 256 + b) * 256 + c) * 256 + d
end

local function parse_ip(key, s)
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if a == nil or a > 255 or b > 255 or c > 255 or d > 255 then
        fail("%s=%s: not a dotted IPv4 address", key, s)
    end
    return ip(a, b, c, d)
end

local function parse_cidr(key, s)
    local addr, len = s:match("^([%d%.]+)/(%d+)$")
    len = tonumber(len)
    if addr == nil or len == nil or len < 8 or len > 30 then
        fail("%s=%s: expected a.b.c.d/len with 8 <= len <= 30", key, s)
    end
    local size = 2 ^ (32 - len)
    local base = parse_ip(key, addr)
    return base - base % size, size
end

-- Public-looking: skips private, loopback, link-local, CGN, multicast and
-- documentation ranges (those hold this script's own defaults).
local PUBLIC_FIRST = {}
do
    local skip = { [0] = true, [10] = true, [100] = true, [127] = true, [169] = true,
        [172] = true, [192] = true, [198] = true, [203] = true }
    for o = 1, 223 do
        if not skip[o] then PUBLIC_FIRST[#PUBLIC_FIRST + 1] = o end
    end
end

-- n distinct public-looking addresses drawn with unif.
local function public_addrs(n, unif)
    local out, seen = {}, {}
    while #out < n do
        local a = PUBLIC_FIRST[floor(unif() * #PUBLIC_FIRST) + 1]
        local v = ip(a, floor(unif() * 256), floor(unif() * 256), 1 + floor(unif() * 254))
        if not seen[v] then
            seen[v] = true
            out[#out + 1] = v
        end
    end
    return out
end

---------------------------------------------------------------------------
-- Address pools with skewed popularity. A pick is two table lookups: one
-- random word's low bits choose one of 2^bits equally likely slots (inverse
-- CDF), its high 16 bits an entry among those the slot's probability range
-- covers. Head entries own whole slots and come out exactly; in the tail, where
-- a slot spans several entries of nearly equal weight, they share it evenly.

local POOL_ADDR, POOL_LO, POOL_SPAN, POOL_MASK, POOL_ID = {}, {}, {}, {}, {}

local function add_pool(name, addrs, weights)
    local n = #addrs
    local bits = n == 1 and 0 or (n <= 16 and 8 or 16)
    local size = 2 ^ bits
    local total = 0
    for i = 1, n do total = total + weights[i] end
    local lo, span = {}, {}
    local j, cum = 1, weights[1] / total -- cum: CDF at the end of entry j
    for slot = 0, size - 1 do
        local u0, u1 = slot / size, (slot + 1) / size
        while cum <= u0 and j < n do
            j = j + 1
            cum = cum + weights[j] / total
        end
        local first = j
        while cum < u1 and j < n do
            j = j + 1
            cum = cum + weights[j] / total
        end
        lo[slot + 1], span[slot + 1] = first, j - first + 1
    end
    local id = #POOL_ADDR + 1
    POOL_ADDR[id], POOL_LO[id], POOL_SPAN[id], POOL_MASK[id] = addrs, lo, span, size - 1
    POOL_ID[name] = id
    return id
end

local function zipf_weights(n, s)
    local w = {}
    for i = 1, n do w[i] = 1 / i ^ s end
    return w
end

---------------------------------------------------------------------------
-- Services. weight: share of connections (percent). model: tcp | udp | quic
-- | icmp. Payload medians (bytes) and log-normal sigmas for the request
-- (client->server) and response directions. scale: the payload follows the
-- daily swing and spike/drop (bulk transfers; DNS, NTP and ICMP keep their size).
-- noreply: share of UDP/ICMP exchanges without an answer.

local SERVICES = {
    --  name        w   model   port client    server    req_med sig  resp_med sig  scale noreply
    { "https",     44, "tcp",  443, "hosts",   "web",      700, 1.0, 12000, 2.0, true,  0 },
    { "quic",      10, "quic", 443, "hosts",   "web",     1500, 1.0, 20000, 2.0, true,  0 },
    { "http",       8, "tcp",   80, "hosts",   "web",      500, 0.8,  8000, 2.2, true,  0 },
    { "dns",       20, "udp",   53, "hosts",   "dns",       40, 0.2,   120, 0.6, false, 0.02 },
    { "ntp",        2, "udp",  123, "hosts",   "ntp",       48, 0.0,    48, 0.0, false, 0 },
    { "ssh",        2, "tcp",   22, "hosts",   "ssh",     3000, 1.5,  6000, 1.8, true,  0 },
    { "smtp_out",   1, "tcp",   25, "mailsrv", "mx",     20000, 1.8,   400, 0.5, true,  0 },
    { "smtp_in",    1, "tcp",   25, "mx",      "mailsrv", 20000, 1.8,  400, 0.5, true,  0 },
    { "imaps",      3, "tcp",  993, "hosts",   "imap",     800, 1.0, 15000, 2.0, true,  0 },
    { "https_in",   5, "tcp",  443, "webcli",  "websrv",   700, 1.0, 15000, 1.8, true,  0 },
    { "http_in",    1, "tcp",   80, "webcli",  "websrv",   500, 0.8, 10000, 2.0, true,  0 },
    { "icmp",       2, "icmp",   0, "hosts",   "web",       56, 0.0,    56, 0.0, false, 0.02 },
}

local MODEL_TCP, MODEL_UDP, MODEL_QUIC, MODEL_ICMP = 1, 2, 3, 4
local MODEL_ID = { tcp = MODEL_TCP, udp = MODEL_UDP, quic = MODEL_QUIC, icmp = MODEL_ICMP }

-- Parallel arrays indexed by service number (the hot path reads these).
local S_MODEL, S_PORT, S_CPOOL, S_SPOOL = {}, {}, {}, {}
local S_REQ_MED, S_REQ_SIG, S_RESP_MED, S_RESP_SIG, S_SCALE, S_NOREPLY = {}, {}, {}, {}, {}, {}
local SVC_LUT = {} -- 4096 slots -> service number
local SVC_MASK = 4095

-- TCP outcomes on one uniform draw o, cumulative upper bounds: complete,
-- mid-flow export, client reset, server reset, refused; the rest unanswered.
local TCP_COMPLETE, TCP_MIDFLOW, TCP_RST_C, TCP_RST_S, TCP_REFUSED = 0.90, 0.92, 0.94, 0.96, 0.99

local MAX_PAYLOAD = 4e9 -- caps the log-normal tail (one flow, ~4 GB)

---------------------------------------------------------------------------
-- Daily swing: per-minute table, linear interpolation per record.

local DAY_MS = 86400000
local DAILY = {}

local function build_daily(swing, peak_hour)
    for k = 0, 1440 do
        local h = k / 60
        DAILY[k + 1] = swing ^ (0.5 * cos(2 * pi * (h - peak_hour) / 24))
    end
end

local function daily_factor(ts)
    local x = (ts % DAY_MS) * (1 / 60000)
    local k = floor(x)
    local d0 = DAILY[k + 1]
    return d0 + (DAILY[k + 2] - d0) * (x - k)
end

---------------------------------------------------------------------------
-- Background: one connection gives a request record now and (usually) its
-- response record in the next background slot, held in these upvalues.

local pend = false
local p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl = 0, 0, 0, 0, 0, 0, 0, 0

local function pick(pool)
    local r = rnd_a()
    local slot = band(r, POOL_MASK[pool]) + 1
    return POOL_ADDR[pool][POOL_LO[pool][slot] + floor(rshift(r, 16) * (1 / 65536) * POOL_SPAN[pool][slot])]
end

local function ephemeral(u)
    return 32768 + floor(u * 28232) -- 32768..60999
end

-- Next background record at time ts; m multiplies bulk payloads (spike, drop).
-- Returns src, dst, src_port, dst_port, proto, bytes, packets, tcp_flags.
local function background(ts, m)
    if pend then
        pend = false
        return p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl
    end
    local s = SVC_LUT[band(rnd_a(), SVC_MASK) + 1]
    local model = S_MODEL[s]
    local c = pick(S_CPOOL[s])
    local v = pick(S_SPOOL[s])
    local cport = ephemeral(unif_a())
    local port = S_PORT[s]
    local o = unif_a()
    -- Two independent normals (Box-Muller) for the two directions' payloads.
    local r = sqrt(-2 * log(1 - unif_a()))
    local th = 2 * pi * unif_a()
    local sc = 1
    if S_SCALE[s] then sc = m * daily_factor(ts) end
    local req = floor(S_REQ_MED[s] * exp(S_REQ_SIG[s] * r * cos(th)) * sc)
    local resp = floor(S_RESP_MED[s] * exp(S_RESP_SIG[s] * r * sin(th)) * sc)
    if req > MAX_PAYLOAD then req = MAX_PAYLOAD end
    if resp > MAX_PAYLOAD then resp = MAX_PAYLOAD end

    if model == MODEL_TCP then
        local rq_d, rs_d = ceil(req / 1448), ceil(resp / 1448)
        if o < TCP_COMPLETE or (o >= TCP_MIDFLOW and o < TCP_RST_S) then
            -- SYN, ACK, FIN (+1 ACK per 2 segments received); the server's
            -- SYN-ACK and FIN.
            local cp = 3 + rq_d + floor(rs_d / 2)
            local sp = 2 + rs_d + floor(rq_d / 2)
            local cf, sf = 27, 27
            if o >= TCP_RST_C then cf, sf = 26, 30 -- server resets
            elseif o >= TCP_MIDFLOW then cf, sf = 30, 26 end -- client resets
            pend = true
            p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl = v, c, port, cport, 6, resp + 52 * sp, sp, sf
            return c, v, cport, port, 6, req + 52 * cp, cp, cf
        elseif o < TCP_MIDFLOW then
            -- A long flow exported by the active timeout: no SYN or FIN.
            local cp = 1 + rq_d + floor(rs_d / 2)
            local sp = 1 + rs_d + floor(rq_d / 2)
            pend = true
            p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl = v, c, port, cport, 6, resp + 52 * sp, sp, 24
            return c, v, cport, port, 6, req + 52 * cp, cp, 24
        elseif o < TCP_REFUSED then
            pend = true
            p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl = v, c, port, cport, 6, 40, 1, 20
            return c, v, cport, port, 6, 60, 1, 2
        else
            -- Unanswered: the SYN and up to two retransmissions.
            local k = 1 + floor((o - TCP_REFUSED) * (3 / (1 - TCP_REFUSED)))
            if k > 3 then k = 3 end
            return c, v, cport, port, 6, 60 * k, k, 2
        end
    elseif model == MODEL_ICMP then
        local k = 1 + floor(o * 4 % 1 * 4) -- 1..4 echo requests
        if o >= S_NOREPLY[s] then
            pend = true
            p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl = v, c, 0, 0, 1, 84 * k, k, 0
        end
        return c, v, 0, 0, 1, 84 * k, k, 0
    else
        local cp, sp, cb, sb
        if model == MODEL_QUIC then
            -- 1350-byte datagrams, 48 bytes of IP/UDP/QUIC header; the client
            -- acknowledges every second datagram it receives.
            local rs_d = ceil(resp / 1350)
            if rs_d < 1 then rs_d = 1 end
            cp = ceil(req / 1350)
            if cp < 1 then cp = 1 end
            cp = cp + floor(rs_d / 2)
            sp = rs_d
            cb, sb = req + 48 * cp, resp + 48 * sp
        else
            cp = ceil(req / 1472)
            if cp < 1 then cp = 1 end
            sp = ceil(resp / 1472)
            if sp < 1 then sp = 1 end
            cb, sb = req + 28 * cp, resp + 28 * sp
        end
        if o >= S_NOREPLY[s] then
            pend = true
            p_src, p_dst, p_sp, p_dp, p_pr, p_by, p_pk, p_fl = v, c, port, cport, 17, sb, sp, 0
        end
        return c, v, cport, port, 17, cb, cp, 0
    end
end

---------------------------------------------------------------------------
-- Anomalies. Each kind: option defaults, option parsers, and gen(a) returning
-- one record's fields (src .. tcp_flags) drawn from stream B.

local function syn_bytes()
    return 40 + floor(unif_b() * 21) -- 40..60
end

local function tcp_bulk(a, lo, hi)
    local payload = floor(lo + unif_b() * (hi - lo))
    local pk = 3 + ceil(payload / 1448)
    return a.src, a.dst, ephemeral(unif_b()), a.port, 6, payload + 52 * pk, pk, 27
end

local KINDS = {
    portscan = {
        defaults = { src = "203.0.113.66", dst = "10.0.1.10", order = "seq", share = "0.1" },
        gen = function(a)
            local port
            if a.random then
                port = 1 + floor(unif_b() * 65535)
            else
                port = a.ctr % 65535 + 1
                a.ctr = a.ctr + 1
            end
            return a.src, a.dst, a.sport, port, 6, syn_bytes(), 1, 2
        end,
    },
    hscan = {
        defaults = { src = "203.0.113.67", net = "10.0.0.0/16", port = "22", order = "seq", share = "0.1" },
        gen = function(a)
            local off
            if a.random then
                off = 1 + floor(unif_b() * (a.net_size - 2))
            else
                off = a.ctr % (a.net_size - 2) + 1
                a.ctr = a.ctr + 1
            end
            return a.src, a.net_base + off, a.sport, a.port, 6, syn_bytes(), 1, 2
        end,
    },
    flood = {
        defaults = { dst = "10.0.0.5", port = "80", share = "0.1" },
        gen = function(a)
            local src = rnd_b() % TWO32
            return src, a.dst, 1024 + floor(unif_b() * 64512), a.port, 6, syn_bytes(), 1, 2
        end,
    },
    amplification = {
        defaults = { dst = "10.0.0.5", port = "53", sources = "1000", share = "0.1" },
        gen = function(a)
            local src = a.sources_list[floor(unif_b() * a.nsources) + 1]
            local by = 3000 + floor(unif_b() * 1001)
            return src, a.dst, a.port, 1024 + floor(unif_b() * 64512), 17, by, ceil(by / 1500), 0
        end,
    },
    heavy = {
        defaults = { src = "10.0.3.7", dst = "192.0.2.10", port = "443", share = "0.1" },
        gen = function(a) return tcp_bulk(a, 1e6, 1e7) end,
    },
    exfil = {
        defaults = { src = "10.0.2.20", dst = "198.51.100.77", port = "443", share = "0.1" },
        gen = function(a) return tcp_bulk(a, 2e6, 2e7) end,
    },
    spike = { defaults = { factor = "5", share = "1" } },
    drop = { defaults = { factor = "0.05", share = "1" } },
}

local KIND_NAMES = "portscan, hscan, flood, amplification, heavy, exfil, spike, drop"

-- How each anomaly option's text becomes a value in the anomaly table.
local ANOM_OPTS = {
    share = function(a, w, s) a.share = parse_number(w .. " share", s, { gt = 0, max = 1 }) end,
    src = function(a, w, s) a.src = parse_ip(w .. " src", s) end,
    dst = function(a, w, s) a.dst = parse_ip(w .. " target", s) end,
    port = function(a, w, s) a.port = parse_number(w .. " port", s, { integer = true, min = 1, max = 65535 }) end,
    factor = function(a, w, s) a.factor = parse_number(w .. " factor", s, { gt = 0, max = 1e6 }) end,
    sources = function(a, w, s)
        a.nsources = parse_number(w .. " sources", s, { integer = true, min = 1, max = 1000000 })
    end,
    net = function(a, w, s) a.net_base, a.net_size = parse_cidr(w .. " net", s) end,
    order = function(a, w, s)
        if s ~= "seq" and s ~= "random" then fail("%s order=%s: must be seq or random", w, s) end
        a.random = (s == "random")
    end,
}

local function trim(s)
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Parses inject=...; returns a list of anomaly tables {kind, start_s, dur_s, ...}.
local function parse_inject(text, run_s)
    local list = {}
    if trim(text) == "" then return list end
    for item in (text .. ","):gmatch("([^,]*),") do
        item = trim(item)
        if item == "" then fail("inject=%s: empty entry", text) end
        local kind, st, du, rest = item:match("^([%a_]+)@([^+:]+)%+([^:]+)(.*)$")
        if kind == nil then
            fail("inject entry '%s': expected KIND@START+DURATION[:key=value;...]", item)
        end
        local K = KINDS[kind]
        if K == nil then fail("inject entry '%s': unknown kind '%s' (kinds: %s)", item, kind, KIND_NAMES) end
        local a = { kind = kind, gen = K.gen, ctr = 0 }
        a.start_s = parse_number("inject " .. kind .. " start", trim(st), { min = 0 })
        a.dur_s = parse_number("inject " .. kind .. " duration", trim(du), { gt = 0 })
        if run_s ~= nil and a.start_s >= run_s then
            fail("inject entry '%s' starts at %s s, after the end of the run (%s s)", item, a.start_s, run_s)
        end
        local given = {}
        if rest ~= "" then
            if rest:sub(1, 1) ~= ":" then fail("inject entry '%s': expected ':' before the options", item) end
            for kv in (rest:sub(2) .. ";"):gmatch("([^;]*);") do
                kv = trim(kv)
                if kv ~= "" then
                    local k, v = kv:match("^([%a_]+)=(.*)$")
                    if k == nil then fail("inject entry '%s': option '%s' is not key=value", item, kv) end
                    if k == "target" then k = "dst" end
                    if K.defaults[k] == nil then
                        local keys = {}
                        for name in pairs(K.defaults) do keys[#keys + 1] = name == "dst" and "target" or name end
                        table.sort(keys)
                        fail("inject %s: unknown option '%s' (options: %s)", kind, k, table.concat(keys, ", "))
                    end
                    given[k] = trim(v)
                end
            end
        end
        local keys = {}
        for k in pairs(K.defaults) do keys[#keys + 1] = k end
        table.sort(keys) -- parse order fixed, so error messages are stable
        for _, k in ipairs(keys) do
            ANOM_OPTS[k](a, "inject " .. kind, given[k] or K.defaults[k])
        end
        -- A replacement kind's own constant source port (scanners use one).
        a.sport = 40000 + #list * 97
        list[#list + 1] = a
    end
    return list
end

---------------------------------------------------------------------------
-- Top level: options, model tables, declaration.

local opt = parse_options(arg)
local run_s = opt.count ~= nil and opt.count / opt.rate or nil
local ANOM = parse_inject(opt.inject, run_s)

a0, a1, a2, a3 = seed_words(opt.seed, 1)
b0, b1, b2, b3 = seed_words(opt.seed, 2)

do
    -- Internal clients: distinct addresses in 10.0.0.0-10.0.15.255, skipping
    -- .0, .255 and the fixed servers; popularity Zipf in draw order.
    local hosts, seen = {}, { [ip(10, 0, 0, 5)] = true, [ip(10, 0, 0, 25)] = true, [ip(10, 0, 0, 53)] = true }
    local room = 16 * 254 - 3
    while #hosts < opt.hosts do
        local v
        if opt.hosts <= room then
            v = ip(10, 0, floor(unif_a() * 16), 1 + floor(unif_a() * 254))
        else
            v = ip(10, 0, floor(unif_a() * 256), 1 + floor(unif_a() * 254))
        end
        if not seen[v] then
            seen[v] = true
            hosts[#hosts + 1] = v
        end
    end
    add_pool("hosts", hosts, zipf_weights(#hosts, 1.0))
    local web = public_addrs(opt.servers, unif_a)
    add_pool("web", web, zipf_weights(#web, 1.0))
    local webcli = public_addrs(3000, unif_a)
    add_pool("webcli", webcli, zipf_weights(#webcli, 1.0))
    local mx = public_addrs(40, unif_a)
    add_pool("mx", mx, zipf_weights(#mx, 1.0))
    local ssh = public_addrs(30, unif_a)
    add_pool("ssh", ssh, zipf_weights(#ssh, 1.2))
    local imap = public_addrs(6, unif_a)
    add_pool("imap", imap, zipf_weights(#imap, 1.5))
    add_pool("dns", { ip(10, 0, 0, 53), ip(8, 8, 8, 8), ip(1, 1, 1, 1), ip(9, 9, 9, 9) }, { 80, 10, 7, 3 })
    add_pool("ntp", { ip(162, 159, 200, 1), ip(216, 239, 35, 0), ip(129, 6, 15, 28) }, { 5, 3, 2 })
    add_pool("websrv", { ip(10, 0, 0, 5) }, { 1 })
    add_pool("mailsrv", { ip(10, 0, 0, 25) }, { 1 })

    local total = 0
    for i, sv in ipairs(SERVICES) do
        S_MODEL[i] = MODEL_ID[sv[3]]
        S_PORT[i] = sv[4]
        S_CPOOL[i], S_SPOOL[i] = POOL_ID[sv[5]], POOL_ID[sv[6]]
        S_REQ_MED[i], S_REQ_SIG[i], S_RESP_MED[i], S_RESP_SIG[i] = sv[7], sv[8], sv[9], sv[10]
        S_SCALE[i], S_NOREPLY[i] = sv[11], sv[12]
        total = total + sv[2]
    end
    local j, cum = 1, SERVICES[1][2] / total
    for slot = 0, SVC_MASK do
        local u = (slot + 0.5) / (SVC_MASK + 1)
        while cum < u and j < #SERVICES do
            j = j + 1
            cum = cum + SERVICES[j][2] / total
        end
        SVC_LUT[slot + 1] = j
    end

    build_daily(opt.swing, opt.peak_hour)

    for _, a in ipairs(ANOM) do
        if a.kind == "amplification" then
            a.sources_list = public_addrs(a.nsources, unif_b)
        end
    end
end

generator {
    rate = opt.rate,
    count = opt.count,
    format = opt.format,
    topic = opt.topic,
    start = opt.start,
}

---------------------------------------------------------------------------
-- generate(t0, step, n): exactly n records, the i-th at floor(t0 + i*step).

local base_t = nil -- t0 of the first call: anomaly times count from here
local ACTIVE = {}

function generate(t0, step, n)
    local emit = emit
    if base_t == nil then
        base_t = t0
        for _, a in ipairs(ANOM) do
            a.t0 = base_t + a.start_s * 1000
            a.t1 = base_t + (a.start_s + a.dur_s) * 1000
        end
    end
    local t_end = t0 + n * step
    local na = 0
    for k = 1, #ANOM do
        local a = ANOM[k]
        if a.t1 > t0 and a.t0 <= t_end then
            na = na + 1
            ACTIVE[na] = a
        end
    end

    if na == 0 then
        for i = 0, n - 1 do
            local ts = floor(t0 + i * step)
            emit(ts, background(ts, 1))
        end
        return
    end

    for i = 0, n - 1 do
        local ts = floor(t0 + i * step)
        local m, rep, u, acc = 1, nil, -1, 0
        for k = 1, na do
            local a = ACTIVE[k]
            if ts >= a.t0 and ts < a.t1 then
                if a.gen == nil then -- spike / drop
                    if a.share >= 1 or unif_b() < a.share then m = m * a.factor end
                elseif rep == nil then
                    if u < 0 then u = unif_b() end
                    acc = acc + a.share
                    if u < acc then rep = a end
                end
            end
        end
        -- The background record is drawn even when replaced, so stream A
        -- stays the same with and without anomalies.
        local src, dst, sp, dp, pr, by, pk, fl = background(ts, m)
        if rep ~= nil then
            emit(ts, rep.gen(rep))
        else
            emit(ts, src, dst, sp, dp, pr, by, pk, fl)
        end
    end
end
