-- wrk script for contrib/bench/proxy.sh: an authenticated TokenUpdate
-- check-in, as a user-enrolled device sends it. EB_TOKEN (the device's
-- bearer) and EB_CHECKIN (path of the plist body) come from the environment.
local f = assert(io.open(os.getenv("EB_CHECKIN"), "rb"))
wrk.method = "PUT"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-apple-aspen-mdm-checkin"
wrk.headers["User-Agent"] = "MDM/1.0"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("EB_TOKEN")
