-- wrk script: replay a request stream in order, one entry a request (used by `reclab hotpath --generator wrk`).
-- Arguments after `--`: the stream file (an entry a line; anything after a tab is ignored) and the
-- 0-based line to start from. With one wrk thread, its connections take the entries in stream order.
-- An entry is a path (sent as GET) or a write, `POST /events ` and its JSON body (workloads/writes.py),
-- sent as a POST of that body with Content-Type application/json.
-- wrk calls request() once before the run to check it (that request is not sent): the position
-- starts one line back so that the first request sent is the line asked for.
local entries = {}
local position = 0
local WRITE_PREFIX = "POST /events "
local JSON = { ["Content-Type"] = "application/json" }

function init(args)
  for line in io.lines(args[1]) do
    local entry = line:match("^[^\t]*")
    if #entry > 0 then
      if entry:sub(1, #WRITE_PREFIX) == WRITE_PREFIX then
        entries[#entries + 1] = { method = "POST", path = "/events", body = entry:sub(#WRITE_PREFIX + 1) }
      else
        entries[#entries + 1] = { method = "GET", path = entry }
      end
    end
  end
  if #entries == 0 then
    error("no request entries in " .. args[1])
  end
  position = ((tonumber(args[2] or "0") or 0) - 1) % #entries
end

function request()
  position = position % #entries + 1
  local entry = entries[position]
  if entry.body then
    return wrk.format(entry.method, entry.path, JSON, entry.body)
  end
  return wrk.format(entry.method, entry.path)
end
