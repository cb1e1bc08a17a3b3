# frozen_string_literal: true

require "minitest/autorun"
require "tmpdir"
require "open3"

# Builds the C unit tests of the HTTP parser with ASan/UBSan and runs them.
class TestParserC < Minitest::Test
  ROOT = File.expand_path("..", __dir__)

  def test_c_parser_tests_pass
    Dir.mktmpdir("uma-parser-test") do |dir|
      exe = File.join(dir, "test_parser")
      out, status = Open3.capture2e(
        "gcc", "-std=gnu11", "-Wall", "-Wextra", "-g", "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined", "-I", File.join(ROOT, "ext/uma"),
        File.join(ROOT, "test/c/test_parser.c"), File.join(ROOT, "ext/uma/parser.c"), "-o", exe
      )
      assert status.success?, "compile failed:\n#{out}"
      out, status = Open3.capture2e(exe)
      assert status.success?, "C parser tests failed:\n#{out}"
      assert_match(/parser tests: \d+ checks, 0 failures/, out)
    end
  end
end
