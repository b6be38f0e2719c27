-- Scenario: POST /fhir with a Bundle built per request, Prefer: return=minimal.
--   BENCH_BUNDLE=transaction (default): one site visit, as a vaccination site sends it: a
--     Patient (conditional create on its CCCD) and 3 Immunizations referring to it by
--     urn:uuid (each a conditional create on its dose identifier).
--   BENCH_BUNDLE=batch: a batch of BENCH_SIZE (default 100) Immunizations of the Patient
--     BENCH_PATIENT.
-- Every identifier is unique (run nonce + thread id + counter): every Bundle writes.
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

local function dose(patient_ref, key, n)
  return string.format('{"resourceType":"Immunization","identifier":[{"system":"https://bench.example/dose","value":"%s-%d"}],'
    .. '"status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"208"}]},'
    .. '"patient":{"reference":"%s"},"occurrenceDateTime":"2021-08-%02dT09:00:00+07:00","lotNumber":"FF%04d",'
    .. '"performer":[{"actor":{"display":"Trạm Y tế Phường 1"}}],"protocolApplied":[{"doseNumberPositiveInt":%d}]}',
    key, n, patient_ref, n % 28 + 1, n, n % 3 + 1)
end

local function transaction(key, counter)
  local p = string.format("urn:uuid:%08x-0000-4000-8000-%012x", id, counter)
  local entries = { string.format('{"fullUrl":"%s","resource":{"resourceType":"Patient",'
    .. '"identifier":[{"system":"https://bench.example/cccd","value":"%s"}],'
    .. '"name":[{"family":"Nguyễn","given":["Văn","An"]}],"gender":"male","birthDate":"1990-02-14",'
    .. '"telecom":[{"system":"phone","value":"+84912345678"}]},'
    .. '"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=https://bench.example/cccd|%s"}}',
    p, key, key) }
  for n = 1, 3 do
    entries[#entries + 1] = string.format('{"fullUrl":"urn:uuid:%08x-%04x-4000-8000-%012x","resource":%s,'
      .. '"request":{"method":"POST","url":"Immunization","ifNoneExist":"identifier=https://bench.example/dose|%s-%d"}}',
      id, n, counter, dose(p, key, n), key, n)
  end
  return '{"resourceType":"Bundle","type":"transaction","entry":[' .. table.concat(entries, ",") .. ']}'
end

local function batch(key, size, patient)
  local entries = {}
  for n = 1, size do
    entries[n] = string.format('{"resource":%s,"request":{"method":"POST","url":"Immunization"}}',
      dose("Patient/" .. patient, key, n))
  end
  return '{"resourceType":"Bundle","type":"batch","entry":[' .. table.concat(entries, ",") .. ']}'
end

local kind, size, patient
local counter = 0
ok = 0
statuses = ""

function init(args)
  kind = os.getenv("BENCH_BUNDLE") or "transaction"
  size = tonumber(os.getenv("BENCH_SIZE") or "100")
  patient = os.getenv("BENCH_PATIENT")
  assert(kind == "transaction" or patient, "BENCH_PATIENT is needed for a batch")
end

function request()
  counter = counter + 1
  local key = string.format("%s-%d-%d", run, id, counter)
  local body = kind == "transaction" and transaction(key, counter) or batch(key, size, patient)
  return wrk.format("POST", common.base, headers, body)
end

function response(status, hdrs, body)
  -- A batch is 200 even when an entry fails: count failed entries as errors too.
  if status == 200 and not (body and body:find('"status":"[45]%d%d')) then
    ok = ok + 1
  else
    common.other_status(status)
  end
end

function done(summary, latency, requests)
  common.report(summary, latency, common.sum("other"),
    string.format("ok=%d%s", common.sum("ok"), common.other_statuses()))
end
