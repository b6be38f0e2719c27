-- Scenario: conditional create. POST /fhir/Patient with
--   If-None-Exist: identifier=https://bench.example/cccd|<value>
-- where <value> is drawn at random from a fixed range of BENCH_CC_RANGE (5000) values:
-- early requests mostly create (201), later ones mostly find the match (200).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

setup = common.setup

local range = tonumber(os.getenv("BENCH_CC_RANGE") or "5000")
local template = '{"resourceType":"Patient","identifier":[{"system":"https://bench.example/cccd",'
  .. '"value":"%s"}],"name":[{"family":"Nguyễn","given":["Văn","An"]}],"gender":"male",'
  .. '"birthDate":"1990-02-14","telecom":[{"system":"phone","value":"+84912345678"}],'
  .. '"address":[{"city":"Hà Nội","country":"VN"}]}'

created, found, other = 0, 0, 0
statuses = ""

function init(args)
  math.randomseed(os.time() + id * 104729)
end

function request()
  local value = string.format("0010900%05d", math.random(0, range - 1))
  return wrk.format("POST", common.base .. "/Patient", common.authorize({
    ["Content-Type"] = "application/fhir+json",
    ["Accept"] = "application/fhir+json",
    ["Prefer"] = "return=minimal",
    ["If-None-Exist"] = "identifier=https://bench.example/cccd|" .. value,
  }), string.format(template, value))
end

function response(status, hdrs, body)
  if status == 201 then
    created = created + 1
  elseif status == 200 then
    found = found + 1
  else
    common.other_status(status)
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum("other"),
    string.format("201=%d 200=%d%s", common.sum("created"), common.sum("found"),
      common.other_statuses()))
end
