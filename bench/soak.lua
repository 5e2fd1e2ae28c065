-- wrk script for bench/soak.py: POSTs the request bodies listed in SOAK_REQUESTS (lines of
-- "kind path content-type file") in turn, and counts requests sent and statuses by kind.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  requests, kinds, sent, answered = {}, {}, {}, {}
  for line in io.lines(os.getenv("SOAK_REQUESTS")) do
    local kind, path, content_type, file = line:match("(%S+) (%S+) (%S+) (%S+)")
    local handle = assert(io.open(file, "rb"))
    table.insert(requests, wrk.format("POST", path, {["Content-Type"] = content_type}, handle:read("*a")))
    handle:close()
    table.insert(kinds, kind)
    sent[kind] = 0
  end
  next_request = 0
end

function request()
  next_request = next_request % #requests + 1
  local kind = kinds[next_request]
  sent[kind] = sent[kind] + 1
  return requests[next_request]
end

function response(status, headers, body)
  local key = tostring(status)
  answered[key] = (answered[key] or 0) + 1
end

function done(summary, latency, requests)
  local sent_total, answered_total = {}, {}
  for _, thread in ipairs(threads) do
    for kind, count in pairs(thread:get("sent")) do
      sent_total[kind] = (sent_total[kind] or 0) + count
    end
    for status, count in pairs(thread:get("answered")) do
      answered_total[status] = (answered_total[status] or 0) + count
    end
  end
  local parts = {}
  for kind, count in pairs(sent_total) do table.insert(parts, "sent " .. kind .. " " .. count) end
  for status, count in pairs(answered_total) do table.insert(parts, "status " .. status .. " " .. count) end
  table.insert(parts, "socket_errors " .. (summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
  io.write("SOAK " .. table.concat(parts, ", ") .. "\n")
end
