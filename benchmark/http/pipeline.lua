-- wrk script: sends its request 16 times in one write (HTTP pipelining at
-- depth 16) and counts every response; the path is the URL's.
local depth = 16
local batch

init = function(args)
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, wrk.path) -- the URL's path
  end
  batch = table.concat(r)
end

request = function()
  return batch
end
