-- Scenario: citizens' apps reading the person's own Patient (bench/surge.py). Each
-- connection is one app user who waits BENCH_THINK_MS between requests, so the offered
-- load is connections x 1000 / think per second: six times the users is six times the
-- traffic, as on launch day (a closed loop without think time would only measure the
-- server's capacity). BENCH_IDS: a file with the Patient id; BENCH_TOKEN: a patient/ token.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup

local req
local think = tonumber(os.getenv("BENCH_THINK_MS") or "20")

function init(args)
  local path = os.getenv("BENCH_IDS") or error("BENCH_IDS is not set")
  local f = assert(io.open(path, "r"))
  local patient = f:read("*l")
  f:close()
  req = wrk.format("GET", common.base .. "/Patient/" .. patient,
    common.authorize({ ["Accept"] = "application/fhir+json" }))
  math.randomseed(os.time() + id * 7919)
end

function request()
  return req
end

-- Think time with jitter (+-50%), so the users do not march in step.
function delay()
  return think * (0.5 + math.random())
end

function done(summary, latency, requests)
  common.report(summary, latency, nil)
end
