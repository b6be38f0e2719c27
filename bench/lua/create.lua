-- Scenario: POST /fhir/Patient, every body with a unique identifier
-- (run nonce + thread id + per-thread counter), Prefer: return=minimal.
-- BENCH_LIMIT (optional): each thread stops after LIMIT / BENCH_THREADS successful creates
-- (a burst of a known size).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local run = tostring(os.time())
function setup(thread)
  common.setup(thread)
  thread:set("run", run)
end

local headers = common.authorize({
  ["Content-Type"] = "application/fhir+json",
  ["Accept"] = "application/fhir+json",
  ["Prefer"] = "return=minimal",
})
local template = '{"resourceType":"Patient","identifier":[{"system":"https://bench.example/uid",'
  .. '"value":"%s-%d-%d"}],"name":[{"family":"Nguyễn","given":["Văn","An"]}],"gender":"male",'
  .. '"birthDate":"1990-02-14","telecom":[{"system":"phone","value":"+84912345678"}],'
  .. '"address":[{"city":"Hà Nội","country":"VN"}]}'

local counter = 0
local per_thread = nil
ok, other = 0, 0

function init(args)
  local limit = tonumber(os.getenv("BENCH_LIMIT") or "")
  if limit then
    per_thread = math.ceil(limit / (tonumber(os.getenv("BENCH_THREADS") or "1")))
  end
end
statuses = ""

function request()
  counter = counter + 1
  return wrk.format("POST", common.base .. "/Patient", headers, string.format(template, run, id, counter))
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    if per_thread and ok >= per_thread then
      wrk.thread:stop()
    end
  else
    common.other_status(status)
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum("other"),
    string.format("2xx=%d%s", common.sum("ok"), common.other_statuses()))
end
