-- wrk script: run with as many threads as connections (-t N -c N), so that
-- each connection rotates its own session's refresh token, read one a line
-- from $LATCH_BENCH_TOKENS, and carries each answer's successor forward.
local tokens = {}
for line in io.lines(os.getenv("LATCH_BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("token", tokens[next_thread])
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  failed = 0
end

function request()
  return wrk.format(nil, "/auth/refresh", nil, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local t = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if t then token = t else failed = failed + 1 end
end
