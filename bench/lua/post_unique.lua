-- wrk body script for writes that must not repeat within a load (e.g. one open override per
-- limit): like post_rotating.lua, but the numbers 00001..N (third script argument) are handed
-- out without repeats across wrk's threads (thread k of T, the fourth argument, takes k+1,
-- k+1+T, k+1+2T, ...). Counts answers whose body holds "errors" (GraphQL errors come with
-- status 200) and reports them as gql_errors.
local threads = {}
local template = ""
local rotate = 1
local step = 1
local counter = 0
local headers = {}
gql_errors = 0

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local body = f:read("*a")
  f:close()
  return body
end

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  template = read_file(args[1])
  headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then
    headers["Authorization"] = args[2]
  end
  rotate = tonumber(args[3] or "1") or 1
  step = tonumber(args[4] or "1") or 1
  counter = thread_index or 0
end

function request()
  local n = string.format("%05d", counter % rotate + 1)
  counter = counter + step
  local body = string.gsub(template, "__ROT__", n)
  return wrk.format("POST", nil, headers, body)
end

function response(status, response_headers, body)
  if body ~= nil and string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
  end
end

function done(summary, latency, requests)
  local errors = 0
  for _, thread in ipairs(threads) do
    errors = errors + (thread:get("gql_errors") or 0)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d,'
      .. ' "p50_us": %d, "p99_us": %d, "gql_errors": %d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99), errors))
end
