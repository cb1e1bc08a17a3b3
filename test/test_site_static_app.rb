# frozen_string_literal: true

require_relative "helper"
require_relative "../site/lib/site/static_app"
require "rack"
require "rack/mock"

# The Rack app bin/site serve runs on Uma: files of the built site only.
class SiteStaticAppTest < Minitest::Test
  def setup
    @root = Dir.mktmpdir("site")
    FileUtils.mkdir_p(File.join(@root, "uma"))
    File.write(File.join(@root, "index.html"), "<h1>home</h1>")
    File.write(File.join(@root, "uma", "index.html"), "<h1>uma</h1>")
    File.write(File.join(@root, "style.css"), "body {}")
    File.write(File.join(File.dirname(@root), "#{File.basename(@root)}-secret.txt"), "secret")
    @app = Rack::Lint.new(Site::StaticApp.new(@root))
  end

  def teardown
    FileUtils.rm_rf(@root)
    FileUtils.rm_f(File.join(File.dirname(@root), "#{File.basename(@root)}-secret.txt"))
  end

  def get(path, method = "GET") = Rack::MockRequest.new(@app).request(method, path)

  def test_files_and_directory_indexes
    response = get("/")
    assert_equal [200, "text/html; charset=utf-8", "<h1>home</h1>"], [response.status, response.content_type, response.body]
    assert_equal "<h1>uma</h1>", get("/uma/").body
    assert_equal "text/css; charset=utf-8", get("/style.css").content_type
    assert_equal "7", get("/style.css").headers["content-length"]
  end

  def test_head_has_no_body
    response = get("/style.css", "HEAD")
    assert_equal [200, ""], [response.status, response.body]
  end

  def test_missing_files_and_paths_outside_the_root
    assert_equal 404, get("/nope.html").status
    assert_equal 404, get("/../#{File.basename(@root)}-secret.txt").status
    assert_equal 404, get("/%2e%2e/#{File.basename(@root)}-secret.txt").status
  end

  def test_other_methods_are_refused
    assert_equal 405, get("/", "POST").status
  end
end
