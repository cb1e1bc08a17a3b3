# frozen_string_literal: true

# The app the server tests talk to: one route per feature, wrapped in
# Rack::Lint except under /raw/ (responses Lint itself would refuse).
require "rack/lint"

class TestBody
  def initialize(parts) = @parts = parts
  def each(&) = @parts.each(&)
  def close = ($stderr.puts("body closed"); $stderr.flush)
end

class FileBody
  def initialize(path) = @path = path
  def to_path = @path
  def each = yield(File.binread(@path))
end

app = lambda do |env|
  case env["PATH_INFO"]
  when "/" then [200, { "content-type" => "text/plain" }, ["Hello, World!"]]
  when "/echo"
    body = env["rack.input"].read
    [200, { "content-type" => "application/octet-stream", "x-method" => env["REQUEST_METHOD"] }, [body]]
  when "/lines"
    count = 0
    count += 1 while env["rack.input"].gets
    [200, {}, [count.to_s]]
  when "/env"
    keys = %w[REQUEST_METHOD PATH_INFO QUERY_STRING SERVER_NAME SERVER_PORT SERVER_PROTOCOL HTTP_X_TEST CONTENT_TYPE REMOTE_ADDR]
    [200, {}, [keys.map { |k| "#{k}=#{env[k]}" }.join("\n")]]
  when "/stream" then [200, {}, TestBody.new(%w[one two three])]
  when "/nocontent" then [204, {}, []]
  when "/notmodified" then [304, {}, []]
  when "/file" then [200, { "content-type" => "text/plain" }, FileBody.new(ENV.fetch("UMA_TEST_FILE"))]
  when "/big_file" then [200, { "content-type" => "application/octet-stream" }, FileBody.new(ENV.fetch("UMA_TEST_BIG_FILE"))]
  when "/hijack"
    io = env["rack.hijack"].call
    io.write("HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nhijacked")
    io.close
    [200, {}, []]
  when "/partial"
    [200, { "rack.hijack" => ->(io) { io.write("partial!"); io.close } }, []]
  when "/hints"
    env["rack.early_hints"].call({ "link" => "</style.css>; rel=preload" })
    [200, {}, ["after hints"]]
  when "/raise" then raise "boom from the app"
  when "/slow"
    sleep Float(env["QUERY_STRING"].empty? ? "1" : env["QUERY_STRING"])
    [200, {}, ["slow done"]]
  when "/finished"
    path = ENV.fetch("UMA_TEST_FINISHED")
    env["rack.response_finished"] << ->(*) { File.write(path, "first\n", mode: "a") }
    env["rack.response_finished"] << ->(_e, status, *) { File.write(path, "second #{status}\n", mode: "a") }
    [200, {}, ["ok"]]
  when "/call" then [200, {}, ->(stream) { stream.write("a"); stream.write("b"); stream.close }]
  when "/multi" then [200, { "set-cookie" => %w[a=1 b=2] }, ["x"]]
  when "/raw/badheader" then [200, { "x-bad" => "a\r\nb" }, ["never"]]
  when "/raw/rackheader" then [200, { "rack.secret" => "x", "x-ok" => "y" }, ["ok"]]
  when "/pid" then [200, {}, [Process.pid.to_s]]
  else [404, {}, ["not found"]]
  end
end

lint = Rack::Lint.new(app)
run ->(env) { env["PATH_INFO"].start_with?("/raw/") ? app.call(env) : lint.call(env) }
