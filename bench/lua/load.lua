-- wrk script for `make bench`: one request shape, bearer tokens taken in turn.
--
-- wrk ... -s load.lua URL -- METHOD BODY_FILE TOKENS_FILE
--   BODY_FILE:   request body ("-" for none), sent with Content-Type application/json
--   TOKENS_FILE: one bearer token per line ("-" for no Authorization header); a line
--                "TOKEN<TAB>BODY" sends its own JSON body with that token (firmware
--                status reports name each device's own target); a line "cookie:NAME=VALUE"
--                sends that Cookie header instead (a signed-in cockpit session)
-- done() prints one line "WRK_JSON {...}" that bench/core.py parses.

local method, body, tokens, bodies, counter = "GET", nil, {}, {}, 0

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

function init(args)
  method = args[1] or "GET"
  if args[2] and args[2] ~= "-" then body = read_file(args[2]) end
  if args[3] and args[3] ~= "-" then
    for line in io.lines(args[3]) do
      if #line > 0 then
        local token, own = line:match("^([^\t]+)\t(.+)$")
        tokens[#tokens + 1] = token or line
        bodies[#tokens] = own
      end
    end
  end
  -- Threads start at different tokens so they do not march in step.
  counter = math.random(0, 1000)
end

function request()
  local headers, payload = {}, body
  if #tokens > 0 then
    counter = counter + 1
    local n = (counter % #tokens) + 1
    local cookie = tokens[n]:match("^cookie:(.+)$")
    if cookie then
      headers["Cookie"] = cookie
    else
      headers["Authorization"] = "Bearer " .. tokens[n]
    end
    payload = bodies[n] or body
  end
  if payload then headers["Content-Type"] = "application/json" end
  return wrk.format(method, nil, headers, payload)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
