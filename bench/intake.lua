-- wrk script of `make bench-intake`: real signed payloads in turn, a delivery id that is
-- unique across runs (the run's prefix, the thread, a counter), and the status of every answer.
-- Arguments: <prefix> <manifest>; the manifest has one "event<TAB>signature<TAB>body file" line
-- per payload.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  prefix = args[1]
  payloads = {}
  for line in io.lines(args[2]) do
    local event, signature, path = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
    table.insert(payloads, {event = event, signature = signature, body = read_file(path)})
  end
  statuses = {}
end

function request()
  counter = counter + 1
  local p = payloads[(counter % #payloads) + 1]
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = p.event,
    ["X-GitHub-Delivery"] = prefix .. "-" .. tid .. "-" .. counter,
    ["X-Hub-Signature-256"] = p.signature,
  }
  return wrk.format("POST", "/webhook", headers, p.body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do
      totals[status] = (totals[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(totals) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    table.concat(parts, ", ")))
end
