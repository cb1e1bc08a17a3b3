# frozen_string_literal: true

require "minitest/autorun"
require "uma"

# The response head writer (Uma::Response.build_head, in C) on its own.
class TestUmaResponseHead < Minitest::Test
  def head(headers, status: 200, extra: "content-length: 0\r\n")
    Uma::Response.head(status, headers, extra)
  end

  def refused(headers)
    error = assert_raises(Uma::HTTPError) { head(headers) }
    assert_equal 500, error.status
    error.message
  end

  def test_fields_in_order_then_extra
    out = head({ "content-type" => "text/plain", "x-a" => "1" })
    assert_equal "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-a: 1\r\ncontent-length: 0\r\n\r\n", out
    assert_equal Encoding::BINARY, out.encoding
    refute out.frozen?
  end

  def test_array_values_repeat_and_rack_fields_are_dropped
    out = head({ "set-cookie" => %w[a=1 b=2], "rack.hijack" => "x", "x-n" => 5 }, status: 404, extra: "")
    assert_equal "HTTP/1.1 404 Not Found\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nx-n: 5\r\n\r\n", out
  end

  def test_bad_names_are_refused
    ["Content-Type", "x a", "", "x:y", "x\r\ny", "é"].each do |name|
      assert_includes refused({ name => "v" }), "bad header name", name.inspect
    end
    assert_includes refused({ sym: "v" }), "bad header name"
  end

  def test_bad_values_are_refused
    ["a\r\nb", "a\nb", "a\rb", "a\0b"].each do |value|
      assert_includes refused({ "x-a" => value }), "bad value for header x-a", value.inspect
      assert_includes refused({ "x-a" => ["ok", value] }), "bad value for header x-a"
    end
  end

  def test_type_errors
    assert_raises(TypeError) { Uma::Response.build_head("HTTP/1.1 200 OK\r\n", [], "") }
    assert_raises(TypeError) { Uma::Response.build_head(nil, {}, "") }
  end
end
