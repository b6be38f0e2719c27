-- Scenario: the hospital's scan. BENCH_QR names a file with one personal QR token per line
-- (issued to the seeded Patients); BENCH_QR_MODE is "resolve" (GET
-- /fhir/Patient/$qr-resolve?code=HB1:<token>, as the scanner delivers it) or "identifier"
-- (GET /fhir/Patient?identifier=<qr-system>|<token>, any FHIR client).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup

local reqs = {}
local system = "https://healthbook.example.org/fhir/sid/personal-qr"

function init(args)
  local path = os.getenv("BENCH_QR") or error("BENCH_QR is not set")
  local mode = os.getenv("BENCH_QR_MODE") or "resolve"
  local f = assert(io.open(path, "r"))
  for token in f:lines() do
    if token ~= "" then
      local url
      if mode == "identifier" then
        url = common.base .. "/Patient?identifier=" .. system .. "%7C" .. token
      else
        url = common.base .. "/Patient/$qr-resolve?code=HB1:" .. token
      end
      reqs[#reqs + 1] = wrk.format("GET", url,
        common.authorize({ ["Accept"] = "application/fhir+json" }))
    end
  end
  f:close()
  assert(#reqs > 0, "no tokens in " .. path)
  math.randomseed(os.time() + id * 7919)
end

function request()
  return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
  common.report(summary, latency, nil)
end
