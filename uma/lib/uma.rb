# frozen_string_literal: true

require "uringmachine"
require "uma_ext"

# Uma: a Rack 3 HTTP/1.1 server on UringMachine. See uma/README.md.
module Uma
  # Raised in a connection fiber to end it when the worker stops.
  class Stop < StandardError; end

  # A request head, body or keep-alive wait that took too long.
  class Timeout < StandardError; end

  # A problem with the server's own setup (address, config.ru, option).
  class Error < StandardError; end

  # Monotonic seconds, for deadlines.
  #
  # @example
  #   deadline = Uma.now + 5.0
  #   Uma.now < deadline  # => true
  def self.now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

require_relative "uma/version"
require_relative "uma/config"
require_relative "uma/listener"
require_relative "uma/date"
require_relative "uma/input"
require_relative "uma/response"
require_relative "uma/connection"
require_relative "uma/server"
require_relative "uma/cluster"
