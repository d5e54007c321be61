-- wrk script: log the same user in, over and over.
wrk.method = "POST"
wrk.path = "/auth/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"identifier":"bench","password":"' .. os.getenv("LATCH_BENCH_PASSWORD") .. '"}'
