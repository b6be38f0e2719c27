-- Shared helpers for the wrk scenarios (loaded with dofile from each scenario script).
-- Every scenario prints exactly one machine-readable line from done():
--   RESULT <scenario> conns=<n> rps=<req/s> p50_ms=<..> p99_ms=<..> non2xx=<n> sockerr=<n> [extra]
local M = {}

-- The path of the FHIR base on the server under test (BENCH_BASE_PATH; bench/compare.sh
-- runs the scenarios against other servers, whose base is not always /fhir).
M.base = os.getenv("BENCH_BASE_PATH") or "/fhir"

local threads = {}
local next_id = 0

-- setup() runs in the main Lua state once per wrk thread: number the threads and keep them
-- so done() can read their counters.
function M.setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

-- Counts an unexpected status (per thread) and remembers which ones were seen.
function M.other_status(status)
  other = (other or 0) + 1
  seen = seen or {}
  statuses = statuses or ""
  if not seen[status] then
    seen[status] = true
    statuses = statuses .. status .. ","
  end
end

-- " other_status=..." for the RESULT line, or "" when every status was expected.
function M.other_statuses()
  local s = M.concat("statuses")
  return s ~= "" and (" other_status=" .. s) or ""
end

-- Adds the bearer token of an AUTH=oidc run (BENCH_TOKEN) to a header table.
function M.authorize(headers)
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end

-- Adds up a numeric global over all threads.
local function sum(name)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (tonumber(t:get(name)) or 0)
  end
  return total
end
M.sum = sum

-- Joins the distinct comma-separated items of a global string over all threads.
function M.concat(name)
  local seen, out = {}, {}
  for _, t in ipairs(threads) do
    for item in tostring(t:get(name) or ""):gmatch("[^,]+") do
      if not seen[item] then
        seen[item] = true
        out[#out + 1] = item
      end
    end
  end
  return table.concat(out, ",")
end

-- summary/latency are wrk's done() arguments. non2xx: exact when the scenario counts
-- statuses itself in response(); nil = wrk's own status-error count (status >= 400).
function M.report(summary, latency, non2xx, extra)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local rps = summary.requests / secs
  if non2xx == nil then non2xx = e.status end
  io.write(string.format(
    "RESULT %-18s conns=%-3s rps=%-9.1f p50_ms=%-7.3f p99_ms=%-7.3f non2xx=%d sockerr=%d%s\n",
    os.getenv("BENCH_SCENARIO") or "?",
    os.getenv("BENCH_CONNS") or "?",
    rps,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    non2xx,
    e.connect + e.read + e.write + e.timeout,
    extra and (" " .. extra) or ""))
end

return M
