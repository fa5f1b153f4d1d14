-- Tests for scripts/gen_traffic.lua, run from the repo root:
--   luajit tests/lua/test_gen_traffic.lua
-- Stubs the runtime side of the generator contract (arg, generator, emit),
-- loads the script in a fresh environment per case and calls generate().
-- Prints one line per failure, a throughput figure, and "N passed, N failed"
-- last; exits 1 on any failure.

local SCRIPT = "scripts/gen_traffic.lua"
local floor = math.floor

local passed, failed = 0, 0

local function check(cond, name, detail)
    if cond then
        passed = passed + 1
    else
        failed = failed + 1
        print("FAIL " .. name .. (detail and (": " .. tostring(detail)) or ""))
    end
end

local function ip(s)
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

-- Loads the script with args (a table: key = "value", and/or positional
-- strings). Returns the script's environment and the generator{} declaration.
local function load_gen(args)
    local decl, ncalls = nil, 0
    local env = setmetatable({}, { __index = _G })
    env.arg = args
    env.generator = function(t)
        ncalls = ncalls + 1
        decl = t
    end
    env.emit = function() end
    local chunk, err = loadfile(SCRIPT)
    assert(chunk, err)
    setfenv(chunk, env)
    chunk()
    assert(ncalls == 1, "generator{} called " .. ncalls .. " times")
    return env, decl
end

-- Columnar record store.
local function new_store()
    return { n = 0, ts = {}, src = {}, dst = {}, sp = {}, dp = {}, pr = {}, by = {}, pk = {}, fl = {}, nargs = {} }
end

local function capture(env, R)
    env.emit = function(...)
        local ts, src, dst, sp, dp, pr, by, pk, fl = ...
        local n = R.n + 1
        R.n = n
        R.nargs[n] = select("#", ...)
        R.ts[n], R.src[n], R.dst[n], R.sp[n], R.dp[n] = ts, src, dst, sp, dp
        R.pr[n], R.by[n], R.pk[n], R.fl[n] = pr, by, pk, fl
    end
end

-- Runs a generator over total records starting at t0, in calls of chunk.
local function run(args, total, t0, chunk)
    local env, decl = load_gen(args)
    local R = new_store()
    capture(env, R)
    local step = 1000 / decl.rate
    chunk = chunk or 1000
    local done = 0
    while done < total do
        local n = math.min(chunk, total - done)
        env.generate(t0 + done * step, step, n)
        done = done + n
    end
    return R, decl
end

local function same_records(A, B, from, to)
    from, to = from or 1, to or A.n
    for i = from, to do
        if A.ts[i] ~= B.ts[i] or A.src[i] ~= B.src[i] or A.dst[i] ~= B.dst[i] or A.sp[i] ~= B.sp[i]
            or A.dp[i] ~= B.dp[i] or A.pr[i] ~= B.pr[i] or A.by[i] ~= B.by[i] or A.pk[i] ~= B.pk[i]
            or A.fl[i] ~= B.fl[i] then
            return false, i
        end
    end
    return true
end

local function count_distinct(t, from, to, pred)
    local seen, n = {}, 0
    for i = from, to do
        if pred == nil or pred(i) then
            local v = t[i]
            if not seen[v] then
                seen[v] = true
                n = n + 1
            end
        end
    end
    return n
end

local T0 = 1700000000000 -- 2023-11-14T22:13:20Z

---------------------------------------------------------------------------
-- Declaration from options.
do
    local _, d = load_gen({})
    check(d.rate == 1000 and d.count == nil and d.format == "json" and d.topic == "network-traffic"
        and d.start == nil, "defaults declared")
    _, d = load_gen({ rate = "50000", duration = "60", format = "csv", topic = "t1", start = "1700000000000" })
    check(d.rate == 50000 and d.count == 3000000 and d.format == "csv" and d.topic == "t1"
        and d.start == 1700000000000, "options declared", d.count)
    _, d = load_gen({ count = "123", format = "goflow2" })
    check(d.count == 123 and d.format == "goflow2", "count= declared")
    -- key=value also accepted as positional strings.
    _, d = load_gen({ "rate=200", "count=5" })
    check(d.rate == 200 and d.count == 5, "positional key=value")
end

---------------------------------------------------------------------------
-- Exactly n emits per call, ts = floor(t0 + i*step), 9 arguments.
do
    local env, d = load_gen({ rate = "3" })
    local R = new_store()
    capture(env, R)
    local step = 1000 / d.rate
    local ok = true
    for _, n in ipairs({ 0, 1, 7, 1000 }) do
        local before = R.n
        local t0 = T0 + 0.5
        env.generate(t0, step, n)
        if R.n - before ~= n then ok = false end
        for i = 0, n - 1 do
            if R.ts[before + i + 1] ~= floor(t0 + i * step) then ok = false end
        end
    end
    check(ok, "n emits per call with ts = floor(t0 + i*step)")
    local nine = true
    for i = 1, R.n do if R.nargs[i] ~= 9 then nine = false end end
    check(nine, "emit gets 9 arguments")
end

---------------------------------------------------------------------------
-- Determinism.
do
    local A = run({ rate = "10000" }, 20000, T0)
    local B = run({ rate = "10000" }, 20000, T0)
    check(same_records(A, B), "same args -> same records")
    local C = run({ rate = "10000", seed = "2" }, 20000, T0)
    local same = 0
    for i = 1, C.n do
        if A.src[i] == C.src[i] and A.by[i] == C.by[i] then same = same + 1 end
    end
    check(same < C.n / 10, "different seed -> different records", same)
    local D = run({ rate = "10000", seed = "1" }, 20000, T0)
    check(same_records(A, D), "seed=1 is the default")
    -- Splitting into other call sizes does not change the records.
    local E = run({ rate = "10000" }, 20000, T0, 37)
    check(same_records(A, E), "chunking-invariant")
    local F = run({ rate = "10000", inject = "portscan@0.5+0.5,flood@1+0.2" }, 20000, T0, 1)
    local G = run({ rate = "10000", inject = "portscan@0.5+0.5,flood@1+0.2" }, 20000, T0, 4096)
    check(same_records(F, G), "chunking-invariant with anomalies")
end

---------------------------------------------------------------------------
-- Field ranges and the traffic mix over 100k records.
local BASE = run({ rate = "20000" }, 100000, T0)
do
    local R = BASE
    local bad = {}
    local function bad_if(cond, what, i)
        if cond and not bad[what] then bad[what] = i end
    end
    local TCP_FLAGS = { [27] = true, [24] = true, [26] = true, [30] = true, [2] = true, [20] = true }
    local n443, n53, ntcp, nudp, nicmp, nrst = 0, 0, 0, 0, 0, 0
    for i = 1, R.n do
        local src, dst, sp, dp, pr, by, pk, fl = R.src[i], R.dst[i], R.sp[i], R.dp[i], R.pr[i], R.by[i], R.pk[i], R.fl[i]
        for _, v in ipairs({ src, dst, sp, dp, pr, by, pk, fl }) do
            bad_if(type(v) ~= "number" or v ~= floor(v), "integer fields", i)
        end
        bad_if(src < 0 or src >= 2 ^ 32 or dst < 0 or dst >= 2 ^ 32, "addresses uint32", i)
        bad_if(sp < 0 or sp > 65535 or dp < 0 or dp > 65535, "ports 0..65535", i)
        bad_if(pr ~= 6 and pr ~= 17 and pr ~= 1, "proto 6/17/1", i)
        bad_if(pk < 1, "packets >= 1", i)
        bad_if(by < pk * 20, "bytes >= 20*packets", i)
        bad_if(by > pk * 1500, "bytes <= 1500*packets", i)
        if pr == 6 then
            ntcp = ntcp + 1
            bad_if(not TCP_FLAGS[fl], "tcp flags", i)
            if fl == 30 or fl == 20 then nrst = nrst + 1 end
            bad_if(by < pk * 40, "tcp bytes >= 40*packets", i)
        else
            bad_if(fl ~= 0, "non-TCP flags 0", i)
            if pr == 17 then nudp = nudp + 1 else nicmp = nicmp + 1 end
        end
        if pr == 1 then bad_if(sp ~= 0 or dp ~= 0, "icmp ports 0", i) end
        if pr ~= 1 then
            -- one side a service port, the other ephemeral
            local eph = (sp >= 32768 and sp <= 60999) or (dp >= 32768 and dp <= 60999)
            bad_if(not eph, "an ephemeral port", i)
        end
        if sp == 443 or dp == 443 then n443 = n443 + 1 end
        if sp == 53 or dp == 53 then n53 = n53 + 1 end
    end
    for what, i in pairs(bad) do check(false, what, "record " .. i) end
    check(next(bad) == nil, "all records in range")
    local share443 = n443 / R.n
    check(share443 > 0.52 and share443 < 0.66, "443 share 52-66%", share443)
    local share53 = n53 / R.n
    check(share53 > 0.15 and share53 < 0.25, "dns share 15-25%", share53)
    check(nicmp / R.n > 0.01 and nicmp / R.n < 0.03, "icmp share 1-3%", nicmp / R.n)
    check(nrst / ntcp > 0.02 and nrst / ntcp < 0.08, "tcp resets 2-8%", nrst / ntcp)

    -- Internal clients: a few hundred, skewed.
    local lo, hi = ip("10.0.0.0"), ip("10.0.255.255")
    local per = {}
    for i = 1, R.n do
        local v = R.src[i]
        if v >= lo and v <= hi and R.dp[i] ~= 0 and R.dp[i] < 32768 then per[v] = (per[v] or 0) + 1 end
    end
    local counts = {}
    for _, c in pairs(per) do counts[#counts + 1] = c end
    table.sort(counts, function(a, b) return a > b end)
    check(#counts > 300 and #counts < 420, "a few hundred internal sources", #counts)
    check(counts[1] > 20 * counts[#counts], "client popularity skewed", counts[1] .. " vs " .. counts[#counts])
    local ext = count_distinct(R.dst, 1, R.n, function(i) return R.dst[i] > hi or R.dst[i] < lo end)
    check(ext > 1500 and ext < 6500, "thousands of external addresses", ext)

    -- Requests small, responses large (https tcp/443).
    local req, resp = {}, {}
    for i = 1, R.n do
        if R.pr[i] == 6 and R.dp[i] == 443 and R.fl[i] == 27 then req[#req + 1] = R.by[i] end
        if R.pr[i] == 6 and R.sp[i] == 443 and R.fl[i] == 27 then resp[#resp + 1] = R.by[i] end
    end
    table.sort(req)
    table.sort(resp)
    local mreq, mresp = req[floor(#req / 2)], resp[floor(#resp / 2)]
    check(mresp > 5 * mreq, "responses larger than requests", mreq .. " / " .. mresp)
    check(resp[#resp] > 200 * mresp, "heavy-tailed flow sizes", resp[#resp] .. " vs median " .. mresp)
end

---------------------------------------------------------------------------
-- Daily swing: the same draws at the trough (03:00 UTC) and the peak (15:00).
do
    local DAY0 = 1699920000000 -- 2023-11-14T00:00:00Z
    local lo = run({ rate = "10000" }, 50000, DAY0 + 3 * 3600000)
    local hi = run({ rate = "10000" }, 50000, DAY0 + 15 * 3600000)
    local slo, shi = 0, 0
    for i = 1, lo.n do
        slo = slo + lo.by[i]
        shi = shi + hi.by[i]
    end
    check(shi / slo > 2.5 and shi / slo < 3.1, "peak/trough bytes ~3", shi / slo)
    local flat = run({ rate = "10000", swing = "1" }, 50000, DAY0 + 15 * 3600000)
    local sflat = 0
    for i = 1, flat.n do sflat = sflat + flat.by[i] end
    check(shi / sflat > 1.6 and shi / sflat < 1.75, "swing=1 is flat (peak is sqrt(3) x)", shi / sflat)
    local okrate = (lo.n == 50000 and hi.n == 50000)
    check(okrate, "record rate unchanged by the swing")
end

---------------------------------------------------------------------------
-- Anomalies.
local RATE = 10000
local function window(R, t_from, t_to) -- record index range with ts in [t_from, t_to)
    local a, b
    for i = 1, R.n do
        if R.ts[i] >= t_from and a == nil then a = i end
        if R.ts[i] < t_to then b = i end
    end
    return a, b
end

do -- portscan
    local R = run({ rate = tostring(RATE), inject = "portscan@2+1" }, 5 * RATE, T0)
    local src, dst = ip("203.0.113.66"), ip("10.0.1.10")
    local n, outside, wrong, ports = 0, 0, 0, {}
    local nports = 0
    for i = 1, R.n do
        if R.src[i] == src then
            if R.ts[i] < T0 + 2000 or R.ts[i] >= T0 + 3000 then outside = outside + 1 end
            if R.dst[i] ~= dst or R.pr[i] ~= 6 or R.fl[i] ~= 2 or R.pk[i] ~= 1 or R.by[i] < 40 or R.by[i] > 60 then
                wrong = wrong + 1
            end
            n = n + 1
            if not ports[R.dp[i]] then
                ports[R.dp[i]] = true
                nports = nports + 1
            end
        end
    end
    check(outside == 0, "portscan only inside its interval", outside)
    check(n > 850 and n < 1150, "portscan ~10% of the interval's records", n)
    check(wrong == 0, "portscan records: tcp SYN 1 packet 40-60 bytes to the target", wrong)
    check(nports == n, "portscan: sequential distinct ports", nports .. " of " .. n)
    -- Outside the interval the records equal the baseline with no inject=.
    local B = run({ rate = tostring(RATE) }, 5 * RATE, T0)
    local a, b = window(R, T0 + 2000, T0 + 3000)
    check(same_records(R, B, 1, a - 1) and same_records(R, B, b + 1, R.n), "background unchanged outside the anomaly")
    local replaced = 0
    for i = a, b do
        if R.src[i] ~= B.src[i] or R.by[i] ~= B.by[i] then replaced = replaced + 1 end
    end
    check(replaced == n, "inside: only the anomaly records differ", replaced .. " vs " .. n)

    local R2 = run({ rate = tostring(RATE), inject = "portscan@1+1:target=10.0.0.9;src=192.0.2.1;share=0.5;order=random" },
        3 * RATE, T0)
    local m, d = 0, 0
    for i = 1, R2.n do
        if R2.src[i] == ip("192.0.2.1") then
            m = m + 1
            if R2.dst[i] == ip("10.0.0.9") then d = d + 1 end
        end
    end
    check(m > 4600 and m < 5400 and d == m, "portscan options src/target/share", m)
    check(count_distinct(R2.dp, 1, R2.n, function(i) return R2.src[i] == ip("192.0.2.1") end) > 4000,
        "portscan order=random: many distinct ports")
end

do -- flood
    -- port 8080: no background service uses it
    local R = run({ rate = tostring(RATE), inject = "flood@1+1:share=0.3;port=8080" }, 3 * RATE, T0)
    local tgt = ip("10.0.0.5")
    local idx = function(i) return R.dst[i] == tgt and R.dp[i] == 8080 and R.fl[i] == 2 and R.pk[i] == 1 end
    local n = 0
    for i = 1, R.n do
        if idx(i) then
            n = n + 1
            if R.ts[i] < T0 + 1000 or R.ts[i] >= T0 + 2000 then n = -1e9 end
        end
    end
    check(n > 2700 and n < 3300, "flood ~30% of its interval", n)
    local ds = count_distinct(R.src, 1, R.n, idx)
    check(ds > 0.99 * n, "flood: many distinct sources", ds .. " of " .. n)
    local top = 0
    for i = 1, R.n do if idx(i) and R.src[i] >= 2 ^ 31 then top = top + 1 end end
    check(top > 0.4 * n and top < 0.6 * n, "flood sources spread over the IPv4 space", top / n)
end

do -- hscan
    local R = run({ rate = tostring(RATE), inject = "hscan@0+1:port=3389" }, RATE, T0)
    local src = ip("203.0.113.67")
    local pred = function(i) return R.src[i] == src end
    local n, ok = 0, true
    for i = 1, R.n do
        if pred(i) then
            n = n + 1
            if R.dp[i] ~= 3389 or R.fl[i] ~= 2 or R.dst[i] < ip("10.0.0.1") or R.dst[i] > ip("10.0.255.254") then ok = false end
        end
    end
    check(ok and n > 800, "hscan: SYN to port 3389 on internal hosts", n)
    check(count_distinct(R.dst, 1, R.n, pred) == n, "hscan: distinct targets")
end

do -- amplification
    local R = run({ rate = tostring(RATE), inject = "amplification@0+1:port=123;sources=50" }, RATE, T0)
    local pred = function(i) return R.sp[i] == 123 and R.pr[i] == 17 and R.by[i] >= 3000 end
    local n, ok = 0, true
    for i = 1, R.n do
        if pred(i) then
            n = n + 1
            if R.dst[i] ~= ip("10.0.0.5") or R.by[i] > 4000 or R.pk[i] ~= math.ceil(R.by[i] / 1500) then ok = false end
        end
    end
    check(ok and n > 800 and n < 1200, "amplification: udp 123 -> target, 3000-4000 bytes", n)
    check(count_distinct(R.src, 1, R.n, pred) == 50, "amplification: sources=50 reflectors")
end

do -- heavy, exfil
    local R = run({ rate = tostring(RATE), inject = "heavy@0+1,exfil@1+1:target=198.51.100.99" }, 2 * RATE, T0)
    local h, e, ok = 0, 0, true
    for i = 1, R.n do
        if R.src[i] == ip("10.0.3.7") and R.dst[i] == ip("192.0.2.10") then
            h = h + 1
            if R.by[i] < 1e6 or R.dp[i] ~= 443 or R.fl[i] ~= 27 or R.ts[i] >= T0 + 1000 then ok = false end
        elseif R.src[i] == ip("10.0.2.20") and R.dst[i] == ip("198.51.100.99") then
            e = e + 1
            if R.by[i] < 2e6 or R.ts[i] < T0 + 1000 then ok = false end
        end
    end
    check(ok and h > 800 and e > 800, "heavy and exfil flows", h .. " " .. e)
end

do -- spike and drop scale the ordinary records' bytes
    local B = run({ rate = tostring(RATE) }, 3 * RATE, T0)
    local S = run({ rate = tostring(RATE), inject = "spike@1+1" }, 3 * RATE, T0)
    local D = run({ rate = tostring(RATE), inject = "drop@1+1:factor=0.01" }, 3 * RATE, T0)
    local a, b = window(B, T0 + 1000, T0 + 2000)
    local sb, ss, sd = 0, 0, 0
    for i = a, b do
        sb, ss, sd = sb + B.by[i], ss + S.by[i], sd + D.by[i]
    end
    check(ss / sb > 4.5 and ss / sb < 5.05, "spike x5 bytes", ss / sb)
    check(sd / sb < 0.03, "drop collapses bytes", sd / sb)
    -- b + 1 may be the response to a request drawn inside the spike: it
    -- carries the spike's size.
    check(same_records(B, S, 1, a - 1) and same_records(B, S, b + 2, B.n), "spike only inside its interval")
    local samecount = true
    for i = a, b do if S.src[i] ~= B.src[i] or S.dst[i] ~= B.dst[i] then samecount = false end end
    check(samecount, "spike keeps the records, changes bytes")
end

---------------------------------------------------------------------------
-- Bad arguments: clear errors.
local function expect_error(args, pattern, name)
    local ok, err = pcall(load_gen, args)
    local good = (not ok) and type(err) == "string" and err:sub(1, 13) == "gen_traffic: " and err:find(pattern, 1, true) ~= nil
    check(good, "error: " .. name, tostring(err))
end

expect_error({ bogus = "1" }, "unknown option 'bogus'", "unknown key")
expect_error({ rate = "0" }, "rate=0: must be > 0", "rate=0")
expect_error({ rate = "fast" }, "rate=fast: not a number", "rate not a number")
expect_error({ count = "1.5" }, "count=1.5: must be an integer", "fractional count")
expect_error({ count = "0" }, "count=0: must be >= 1", "count=0")
expect_error({ format = "xml" }, "format=xml: must be one of csv, goflow2, json", "bad format")
expect_error({ count = "10", duration = "1" }, "not both", "count and duration")
expect_error({ seed = "-1" }, "seed=-1", "negative seed")
expect_error({ start = "soon" }, "start=soon", "bad start")
expect_error({ topic = "" }, "topic= must not be empty", "empty topic")
expect_error({ "hello" }, "unexpected argument 'hello'", "positional non key=value")
expect_error({ "rate=5", rate = "6" }, "rate given twice", "conflicting duplicate")
expect_error({ inject = "nuke@1+2" }, "unknown kind 'nuke'", "inject kind")
expect_error({ inject = "portscan@1" }, "expected KIND@START+DURATION", "inject syntax")
expect_error({ inject = "portscan@x+2" }, "portscan start", "inject start")
expect_error({ inject = "portscan@1+0" }, "portscan duration=0: must be > 0", "inject duration")
expect_error({ inject = "portscan@1+2:colour=red" }, "unknown option 'colour'", "inject option")
expect_error({ inject = "portscan@1+2:share=2" }, "share=2: must be <= 1", "inject share")
expect_error({ inject = "flood@1+2:target=10.0.0.300" }, "not a dotted IPv4 address", "inject address")
expect_error({ inject = "hscan@1+2:order=zigzag" }, "order=zigzag", "inject order")
expect_error({ inject = "portscan@1+2,,flood@3+1" }, "empty entry", "inject empty entry")
expect_error({ rate = "100", duration = "10", inject = "portscan@20+5" }, "after the end of the run", "inject after end")
expect_error({ duration = "0.0001" }, "less than one record", "too short")

---------------------------------------------------------------------------
-- Throughput of the generate loop with a no-op emit (informational).
do
    local function measure(args)
        local env, d = load_gen(args)
        env.emit = function() end
        local step = 1000 / d.rate
        env.generate(T0, step, 200000) -- warm up the JIT
        local N = 2000000
        local c0 = os.clock()
        local t = T0 + 200000 * step
        for _ = 1, N / 10000 do
            env.generate(t, step, 10000)
            t = t + 10000 * step
        end
        return N / (os.clock() - c0)
    end
    local plain = measure({ rate = "200000" })
    local anom = measure({ rate = "200000", inject = "portscan@0+100,spike@0+100" })
    print(string.format("throughput: %.2f M records/s (background), %.2f M records/s (portscan+spike active)",
        plain / 1e6, anom / 1e6))
    check(plain > 3e5, "throughput sanity (> 0.3 M/s)", plain)
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
