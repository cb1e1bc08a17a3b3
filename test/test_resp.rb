# frozen_string_literal: true

require_relative "helper"
require "socket"

# RESP (the Redis protocol) through UM::IO: #resp_read, #resp_write and
# UM::IO.resp_encode, on pipes and against a real redis-server.
class UMRESPTest < UMTestCase
  def io_with(*parts)
    r, w = pipe
    feed(w, *parts)
    @machine.io(r)
  end

  def read_all(io)
    values = []
    @machine.timeout(5, Timeout::Error) do
      loop do
        v = io.resp_read
        break if v.nil? && io.pending.zero? && io.eof?
        values << v
      end
    end
    values
  end

  def encode(obj)
    UM::IO.resp_encode(+"", obj)
  end

  def test_resp2_values
    io = io_with("+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhe\r\nl\r\n$0\r\n\r\n$-1\r\n*-1\r\n" \
                 "*3\r\n$3\r\nfoo\r\n:1\r\n*1\r\n+x\r\n")
    ok, err, *rest = read_all(io)
    assert_equal "OK", ok
    assert_equal Encoding::UTF_8, ok.encoding
    assert_kind_of UM::IO::RESPError, err
    assert_equal "ERR wrong", err.message
    assert_equal [42, -7, "he\r\nl", "", nil, nil, ["foo", 1, ["x"]]], rest
  end

  def test_resp3_values
    io = io_with("_\r\n#t\r\n#f\r\n,3.25\r\n,inf\r\n,-inf\r\n(123456789012345678901234567890\r\n" \
                 "=15\r\ntxt:Some string\r\n!9\r\nSYNTAX no\r\n%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*0\r\n" \
                 "~2\r\n:1\r\n:2\r\n>2\r\n+message\r\n+hi\r\n|1\r\n+ttl\r\n:3600\r\n+value\r\n")
    values = read_all(io)
    assert_nil values[0]
    assert_equal [true, false, 3.25, Float::INFINITY, -Float::INFINITY, 123456789012345678901234567890,
                  "Some string"], values[1, 7]
    assert_kind_of UM::IO::RESPError, values[8]
    assert_equal "SYNTAX no", values[8].message
    assert_equal({ "a" => 1, "b" => [] }, values[9])
    assert_equal [[1, 2], %w[message hi], "value"], values[10..]
    assert_equal 13, values.size
    assert io_with(",nan\r\n").resp_read.nan?
  end

  def test_value_split_at_every_boundary
    msg = "*4\r\n$3\r\nSET\r\n%1\r\n+k\r\n*2\r\n:1\r\n,2.5\r\n#t\r\n$-1\r\n"
    (1...msg.bytesize).each do |i|
      io = io_with(msg[0, i], msg[i..])
      assert_equal ["SET", { "k" => [1, 2.5] }, true, nil], @machine.timeout(5, Timeout::Error) { io.resp_read }, "split at #{i}"
      assert_nil io.resp_read
    end
  end

  def test_eof_and_malformed_input
    assert_nil io_with("").resp_read
    assert_raises(EOFError) { io_with("*2\r\n:1\r\n").resp_read }
    assert_raises(EOFError) { io_with("$10\r\nabc").resp_read }
    assert_raises(EOFError) { io_with("+OK").resp_read }
    assert_raises(UM::Error) { io_with("?what\r\n").resp_read }
    assert_raises(UM::Error) { io_with("$abc\r\n").resp_read }
    assert_raises(UM::Error) { io_with("$-2\r\n").resp_read }
    assert_raises(UM::Error) { io_with(":12x\r\n").resp_read }
    assert_raises(UM::Error) { io_with("$3\r\nabcXY").resp_read }
    assert_raises(UM::Error) { io_with("#x\r\n").resp_read }
    assert_raises(UM::Error) { io_with("\r\n").resp_read }
    # Nesting deep enough to overflow the C stack is refused.
    assert_raises(UM::Error) { io_with("*1\r\n" * 100_000).resp_read }
  end

  def test_encode
    assert_equal "$5\r\nhello\r\n", encode("hello")
    assert_equal "$3\r\nSET\r\n", encode(:SET)
    assert_equal ":42\r\n", encode(42)
    assert_equal ":9223372036854775807\r\n", encode(2**63 - 1)
    assert_equal "(9223372036854775808\r\n", encode(2**63)
    assert_equal ",2.5\r\n", encode(2.5)
    assert_equal ",0.1\r\n", encode(0.1)
    assert_equal ",inf\r\n", encode(Float::INFINITY)
    assert_equal "_\r\n", encode(nil)
    assert_equal "#t\r\n#f\r\n", encode(true) + encode(false)
    assert_equal "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", encode(%w[SET k v])
    assert_equal "%1\r\n$1\r\na\r\n*1\r\n:1\r\n", encode({ "a" => [1] })
    assert_equal "-ERR no\r\n", encode(UM::IO::RESPError.new("ERR no"))
    buf = +"x"
    assert_same buf, UM::IO.resp_encode(buf, 1)
    assert_equal "x:1\r\n", buf
  end

  def test_encode_bad_arguments
    assert_raises(TypeError) { encode(Object.new) }
    assert_raises(TypeError) { encode([1, 2..3]) }
    assert_raises(TypeError) { UM::IO.resp_encode(nil, 1) }
    assert_raises(FrozenError) { UM::IO.resp_encode("".freeze, 1) }
    a = []
    a << a
    assert_raises(ArgumentError) { encode(a) }
    assert_raises(ArgumentError) { encode(UM::IO::RESPError.new("a\r\nb")) }
  end

  def test_round_trip_through_resp_write
    r, w = pipe
    out = @machine.io(w)
    values = ["text", "", 0, -1, 2**70, 1.5, true, false, nil, %w[a b], { "k" => { "n" => [1, [2]] } }]
    total = values.sum { |v| out.resp_write(v) }
    assert_equal values.sum { |v| encode(v).bytesize }, total
    @machine.close(w)
    io = @machine.io(r)
    assert_equal values, values.map { io.resp_read }
    assert_nil io.resp_read
  end

  # A redis-server of our own, on a free port in a temporary directory.
  def with_redis
    skip "redis-server is not installed (apt-get install redis-server)" unless system("command -v redis-server > /dev/null")
    Dir.mktmpdir do |dir|
      port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
      pid = spawn("redis-server", "--port", port.to_s, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
                  "--appendonly", "no", "--daemonize", "no", out: File::NULL, err: File::NULL)
      begin
        fd = nil
        100.times do
          fd = @machine.tcp_connect("127.0.0.1", port)
          break
        rescue Errno::ECONNREFUSED
          @machine.sleep(0.05)
        end
        flunk "redis-server did not start" unless fd
        track_fd(fd)
        @machine.timeout(10, Timeout::Error) { yield @machine.io(fd) }
      ensure
        Process.kill(:KILL, pid)
        Process.wait(pid)
      end
    end
  end

  def test_against_redis_server
    with_redis do |io|
      assert_equal :socket, io.mode
      io.resp_write(%w[PING])
      assert_equal "PONG", io.resp_read
      io.resp_write(["SET", "k", "v\r\nwith crlf"])
      assert_equal "OK", io.resp_read
      io.resp_write([:GET, "k"])
      assert_equal "v\r\nwith crlf", io.resp_read
      io.resp_write(%w[GET missing])
      assert_nil io.resp_read # RESP2 null bulk string
      io.resp_write(%w[INCRBY n 41])
      assert_equal 41, io.resp_read
      io.resp_write(%w[RPUSH l a b c])
      assert_equal 3, io.resp_read
      io.resp_write(%w[LRANGE l 0 -1])
      assert_equal %w[a b c], io.resp_read
      io.resp_write(%w[NOSUCHCOMMAND])
      err = io.resp_read
      assert_kind_of UM::IO::RESPError, err
      assert_match(/unknown command/i, err.message)
      # Pipelined: many commands, then their replies.
      100.times { |i| io.resp_write(["SET", "key#{i}", "value #{i}"]) }
      assert_equal ["OK"] * 100, 100.times.map { io.resp_read }
      io.resp_write(["MGET", *100.times.map { |i| "key#{i}" }])
      assert_equal 100.times.map { |i| "value #{i}" }, io.resp_read

      # RESP3: maps, doubles, booleans, null.
      io.resp_write(%w[HELLO 3])
      hello = io.resp_read
      assert_kind_of Hash, hello
      assert_equal 3, hello["proto"]
      io.resp_write(%w[HSET h f1 1 f2 2])
      assert_equal 2, io.resp_read
      io.resp_write(%w[HGETALL h])
      assert_equal({ "f1" => "1", "f2" => "2" }, io.resp_read)
      io.resp_write(%w[ZADD z 1.5 m])
      assert_equal 1, io.resp_read
      io.resp_write(%w[ZSCORE z m])
      assert_equal 1.5, io.resp_read
      io.resp_write(%w[GET missing])
      assert_nil io.resp_read # RESP3 null
      io.resp_write(%w[SADD s x])
      io.resp_read
      io.resp_write(%w[SMEMBERS s])
      assert_equal ["x"], io.resp_read
    end
  end
end
