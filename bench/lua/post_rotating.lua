-- wrk body script for writes: like post.lua, but every request replaces __ROT__ in the body with
-- the next of N zero-padded numbers (00001..N, third script argument), so concurrent writes go
-- to N different rows instead of queueing on one row lock. Counts answers whose body holds
-- "errors" (GraphQL errors come with status 200) and reports them as gql_errors.
local threads = {}
local template = ""
local rotate = 1
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
  table.insert(threads, thread)
end

function init(args)
  template = read_file(args[1])
  headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then
    headers["Authorization"] = args[2]
  end
  rotate = tonumber(args[3] or "1") or 1
  counter = math.random(0, rotate - 1)
end

function request()
  counter = counter + 1
  local n = string.format("%05d", counter % rotate + 1)
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
