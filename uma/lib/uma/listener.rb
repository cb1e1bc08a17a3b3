# frozen_string_literal: true

require "socket"

module Uma
  # A listening socket made from an address: "HOST:PORT", "[V6]:PORT" or
  # "unix:PATH".
  class Listener
    attr_reader :socket, :url

    # The listeners for every address of a Config.
    def self.open_all(config)
      config.addresses.map { |address| new(address, config.backlog) }
    end

    def initialize(address, backlog)
      if address.start_with?("unix:")
        path = address.delete_prefix("unix:")
        File.unlink(path) if File.socket?(path)
        @socket = Socket.new(:UNIX, :STREAM)
        @socket.bind(Socket.sockaddr_un(path))
        @url = address
      else
        host, port = split(address)
        addr = Addrinfo.tcp(host, port)
        @socket = Socket.new(addr.afamily, :STREAM)
        @socket.setsockopt(:SOCKET, :REUSEADDR, true)
        @socket.setsockopt(:IPPROTO_IPV6, :V6ONLY, true) if addr.ipv6?
        # Accepted sockets inherit it: a response is never held back waiting
        # for the ACK of the previous one (pipelined requests).
        @socket.setsockopt(:IPPROTO_TCP, :NODELAY, true)
        @socket.bind(addr)
        @url = "http://#{address}"
      end
      @socket.listen(backlog)
    rescue Errno::EADDRINUSE
      @socket&.close
      raise Error, "cannot listen on #{address}: address already in use"
    rescue SocketError, SystemCallError => e
      @socket&.close
      raise Error, "cannot listen on #{address}: #{e.message}"
    end

    # The listening socket's fd, for UringMachine#accept.
    def fileno = @socket.fileno

    # Closes the listening socket.
    def close = @socket.close

    private

    def split(address)
      if (m = address.match(/\A\[([^\]]+)\]:(\d+)\z/)) || (m = address.match(/\A([^:]+):(\d+)\z/))
        [m[1], Integer(m[2], 10)]
      else
        raise Error, "bad address #{address.inspect} (expected HOST:PORT, [IPV6]:PORT or unix:PATH)"
      end
    end
  end
end
