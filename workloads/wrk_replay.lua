-- wrk script: replay a request stream in order, one path a request (used by `reclab hotpath --generator wrk`).
-- Arguments after `--`: the stream file (a path a line; anything after a tab is ignored) and the
-- 0-based line to start from. With one wrk thread, its connections take the paths in stream order.
-- wrk calls request() once before the run to check it (that request is not sent): the position
-- starts one line back so that the first request sent is the line asked for.
local paths = {}
local position = 0

function init(args)
  for line in io.lines(args[1]) do
    local path = line:match("^[^\t]*")
    if #path > 0 then
      paths[#paths + 1] = path
    end
  end
  if #paths == 0 then
    error("no request paths in " .. args[1])
  end
  position = ((tonumber(args[2] or "0") or 0) - 1) % #paths
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end
