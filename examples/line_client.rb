# frozen_string_literal: true

# A line-oriented TCP client: sends each argument as a line and prints the
# line the server answers (try it against examples/echo_server.rb).
#
#   bin/ruby examples/line_client.rb HOST PORT LINE...

require "uringmachine"

abort "usage: line_client.rb HOST PORT LINE..." if ARGV.size < 3
host, port, *lines = ARGV
machine = UM.new
fd = machine.tcp_connect(host, Integer(port))
io = machine.io(fd, :socket)
lines.each do |line|
  io.write(line, "\n")
  puts "> #{line}"
  puts "< #{io.read_line}"
end
machine.close(fd)
