# frozen_string_literal: true

require_relative "helper"
require_relative "../site/lib/site"
require_relative "../site/lib/site/examples"
require "open3"
require "rbconfig"
require "rack"
require "rack/builder"
require "rack/mock"

# Runs the code examples of the site's pages: a ```ruby block followed by a
# ```text block must print exactly that text; a block without one must run
# without error; a config.ru must build an app that answers GET /.
class SiteExamplesTest < Minitest::Test
  LOAD_DIRS = [
    File.dirname($LOADED_FEATURES.grep(/um_ext\.so\z/).first),
    File.expand_path("../lib", __dir__),
    File.expand_path("../uma/lib", __dir__),
    *$LOADED_FEATURES.grep(/uma_ext\.so\z/).map { File.dirname(_1) }
  ].uniq.freeze

  EXAMPLES = Site::Examples.all.freeze

  EXAMPLES.each do |example|
    define_method("test_#{example.name}") do
      if example.rackup?
        assert_rackup_answers(example.code)
      else
        assert_example_prints(example.code, example.output)
      end
    end
  end

  def test_the_pages_have_examples_with_output
    assert_operator EXAMPLES.count(&:output), :>=, 40
  end

  private

  def assert_example_prints(code, expected)
    args = [RbConfig.ruby, *LOAD_DIRS.flat_map { ["-I", _1] }, "-rbundler/setup", "-e", code]
    out, err, status = Open3.capture3(*args, chdir: Dir.tmpdir)
    assert status.success?, "example failed (#{status.inspect}):\n#{err}"
    assert_equal expected, out, "stderr:\n#{err}" if expected
  end

  def assert_rackup_answers(code)
    app = Rack::Builder.new_from_string(code)
    status, _headers, body = app.call(Rack::MockRequest.env_for("/"))
    assert_equal 200, status
    body.close if body.respond_to?(:close)
  end
end
