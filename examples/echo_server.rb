# frozen_string_literal: true

# A line echo server: accept_each hands over each connection, a fiber per
# connection reads lines through UM::IO and writes them back.
#
#   bin/ruby examples/echo_server.rb [PORT]     (default 1234)
#   bin/ruby examples/line_client.rb 127.0.0.1 1234 hello world
#
# Stop it with Ctrl-C.

require "uringmachine"

$stdout.sync = true
port = Integer(ARGV[0] || 1234)
machine = UM.new
listener = machine.tcp_listen("127.0.0.1", port)
puts "echo server listening on 127.0.0.1:#{port}"

def handle_connection(machine, fd)
  io = machine.io(fd, :socket)
  while (line = io.read_line)
    io.write(line, "\n")
  end
ensure
  machine.close(fd)
end

begin
  machine.accept_each(listener) do |fd|
    machine.spin { handle_connection(machine, fd) }
  end
rescue Interrupt
  puts "\nbye"
ensure
  machine.close(listener)
end
