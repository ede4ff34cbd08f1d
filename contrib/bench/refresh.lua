-- wrk script for the refresh storm of contrib/bench/scale.sh (W3): one
-- refresh chain per wrk thread (run it as wrk -tN -cN, one connection a
-- thread, so that a thread's Lua state holds one chain and its requests go
-- one after another). Each request is grant_type=refresh_token with the
-- latest refresh token the chain holds; response() takes the refresh token
-- answered (the same again when the server does not rotate). An answer but
-- 200 (or a 200 without a refresh token) is counted, and the chain starts
-- again from a spare token of its own, if it has one left.
--
-- A thread stops itself (thread:stop) after the answer that completes past
-- EB_SECS, so that no refresh is in flight when the run ends: a request
-- the server answered but the client never read would leave the chain
-- holding a token the server has rotated away, and the next run would
-- present it (reuse, for a server without a grace window). Run wrk with
-- -d a second or two above EB_SECS; the rate is the answers over the time
-- from the start to the last thread's stop.
--
-- Environment:
--   EB_CHAINS   file of refresh tokens, one a line: the first EB_N are the
--               chains, the rest are spares, dealt round-robin to them
--   EB_N        number of chains (= wrk -t and -c)
--   EB_OUT      file the chains' latest tokens and the unused spares are
--               written to at the end (the next run's EB_CHAINS)
--   EB_SECS     seconds to run (wrk -d must be longer)
--   EB_CLIENT_ID   client_id form parameter (public client), optional
--   EB_AUTH        Authorization header value (client_secret_basic), optional
-- done() prints one line: "refresh-storm {json}" with n, bad, why, secs,
-- p50, p99 (ms). No token is ever printed.

local ffi = require("ffi")
ffi.cdef[[
struct eb_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct eb_timespec *ts);
]]
local ts = ffi.new("struct eb_timespec")

-- CLOCK_MONOTONIC, in seconds
local function now()
	ffi.C.clock_gettime(1, ts)
	return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local function urlencode(s)
	return (s:gsub("[^%w%-%._~]", function(ch)
		return string.format("%%%02X", string.byte(ch))
	end))
end

local function read_lines(path)
	local f = assert(io.open(path, "rb"))
	local out = {}
	for l in f:lines() do
		if l ~= "" then out[#out + 1] = l end
	end
	f:close()
	return out
end

-- ---- the main state: deal the chains and spares to the threads ----

local threads = {}
local nth = 0
local t_start = nil

function setup(thread)
	local all = read_lines(os.getenv("EB_CHAINS"))
	local n = tonumber(os.getenv("EB_N"))
	nth = nth + 1
	if t_start == nil then t_start = now() end
	assert(n ~= nil and nth <= n and #all >= n,
		"refresh.lua: fewer chains than threads (EB_N, EB_CHAINS)")
	local sp = {}
	for i = n + nth, #all, n do sp[#sp + 1] = all[i] end
	thread:set("token", all[nth])
	thread:set("spares", table.concat(sp, " "))
	thread:set("deadline", t_start + tonumber(os.getenv("EB_SECS")))
	threads[nth] = thread
end

-- ---- each thread's state: one chain ----

local client_id = os.getenv("EB_CLIENT_ID")
local auth = os.getenv("EB_AUTH")
local spare_list = nil
bad = 0
why = ""
t_end = 0

function init(args)
	spare_list = {}
	for s in string.gmatch(spares or "", "%S+") do
		spare_list[#spare_list + 1] = s
	end
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
	if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
end

function request()
	local body = "grant_type=refresh_token&refresh_token=" .. urlencode(token)
	if client_id ~= nil and client_id ~= "" then
		body = body .. "&client_id=" .. urlencode(client_id)
	end
	return wrk.format(nil, nil, nil, body)
end

local function step(status, body)
	if status == 200 then
		local rt = body:match('"refresh_token"%s*:%s*"([^"]+)"')
		if rt ~= nil then
			token = rt
			return
		end
	end
	bad = bad + 1
	why = tostring(status) .. " " .. string.sub(body or "", 1, 120)
	-- the chain is broken: start again from a spare, if one is left
	if #spare_list > 0 then token = table.remove(spare_list, 1) end
end

function response(status, headers, body)
	step(status, body)
	local t = now()
	if t >= deadline then
		t_end = t
		wrk.thread:stop()
	end
end

-- ---- the main state again: the report and the tokens for the next run ----

function done(summary, latency, requests)
	local f = assert(io.open(os.getenv("EB_OUT"), "wb"))
	local nbad, first = 0, ""
	local rest = {}
	local last = 0
	for i, t in ipairs(threads) do
		local te = t:get("t_end") or 0
		if te == 0 then te = now() end -- never stopped itself: wrk -d too short
		if te > last then last = te end
		f:write(t:get("token"), "\n")
		nbad = nbad + (t:get("bad") or 0)
		local w = t:get("why") or ""
		if first == "" then first = w end
		-- the spares a thread did not use: what init() left in spares
		-- minus those it took (one per bad answer, in order)
		local k = 0
		for s in string.gmatch(t:get("spares") or "", "%S+") do
			k = k + 1
			if k > (t:get("bad") or 0) then rest[#rest + 1] = s end
		end
	end
	for _, s in ipairs(rest) do f:write(s, "\n") end
	f:close()
	-- the server's answers are JSON strings; keep the reason printable
	first = first:gsub('[%c"\\]', " ")
	io.write(string.format(
		'refresh-storm {"n":%d,"bad":%d,"why":"%s","secs":%.3f,"p50":%.3f,"p99":%.3f,"sockerr":%d}\n',
		summary.requests, nbad, first, last - t_start,
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.timeout))
end
