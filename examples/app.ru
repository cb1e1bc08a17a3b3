# frozen_string_literal: true

# An example Rack app for Uma, the project's web server:
#   bin/uma -p 9292 examples/app.ru
# then: curl localhost:9292/  curl -d hello localhost:9292/echo  curl localhost:9292/stream

routes = {
  "/" => ->(_env) { [200, { "content-type" => "text/plain" }, ["Hello from Uma on io_uring!\n"]] },
  # The request body, read from the socket as the app asks for it.
  "/echo" => ->(env) { [200, { "content-type" => "application/octet-stream" }, [env["rack.input"].read]] },
  # A body given piece by piece: sent chunked, each piece as it comes.
  "/stream" => lambda do |_env|
    body = Enumerator.new { |y| 3.times { |i| y << "piece #{i + 1}\n" } }
    [200, { "content-type" => "text/plain" }, body]
  end
}

run lambda { |env|
  route = routes[env["PATH_INFO"]]
  route ? route.call(env) : [404, { "content-type" => "text/plain" }, ["not found\n"]]
}
