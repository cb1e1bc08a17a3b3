# frozen_string_literal: true

require_relative "helper"
require "open3"
require "rbconfig"

# Runs the examples of the guides in docs/: each ```ruby block followed by a
# ```text block must print exactly that text.
class DocsTest < Minitest::Test
  DOCS = %w[fiber_scheduler.md io.md ssl.md].freeze
  EXAMPLE = /^```ruby\n(?<code>.*?)^```\n\n```text\n(?<output>.*?)^```\n/m

  # Where the extension and the library were loaded from, for the child.
  LOAD_DIRS = [
    File.dirname($LOADED_FEATURES.grep(/um_ext\.so\z/).first),
    File.expand_path("../lib", __dir__)
  ].freeze

  DOCS.each do |doc|
    text = File.read(File.expand_path("../docs/#{doc}", __dir__))
    text.to_enum(:scan, EXAMPLE).map { Regexp.last_match }.each_with_index do |example, i|
      define_method("test_#{File.basename(doc, '.md')}_example_#{i + 1}") do
        assert_example_prints(example[:code], example[:output])
      end
    end
  end

  def test_every_guide_has_examples
    DOCS.each do |doc|
      text = File.read(File.expand_path("../docs/#{doc}", __dir__))
      assert_operator text.scan(EXAMPLE).size, :>=, 5, "#{doc} has too few runnable examples"
    end
  end

  private

  def assert_example_prints(code, expected)
    args = [RbConfig.ruby, *LOAD_DIRS.flat_map { |dir| ["-I", dir] }, "-e", code]
    out, err, status = Open3.capture3(*args)
    assert status.success?, "example failed (#{status.inspect}):\n#{err}"
    assert_equal expected, out, "stderr:\n#{err}"
  end
end
