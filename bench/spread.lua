-- wrk script: runs the script $LATCH_BENCH_SCRIPT (login.lua, refresh.lua)
-- with its threads spread round robin over the servers in $LATCH_BENCH_ADDRS
-- ("127.0.0.1:18181 127.0.0.1:18182"): one wrk, one latency distribution,
-- over every instance of a deployment. wrk's URL only names the first.
dofile(os.getenv("LATCH_BENCH_SCRIPT"))

local addrs = {}
for hostport in os.getenv("LATCH_BENCH_ADDRS"):gmatch("%S+") do
  local host, port = hostport:match("^(.*):(%d+)$")
  addrs[#addrs + 1] = wrk.lookup(host, port)[1]
end

local inner_setup = setup
local threads = 0

function setup(thread)
  threads = threads + 1
  thread.addr = addrs[(threads - 1) % #addrs + 1]
  if inner_setup then inner_setup(thread) end
end
