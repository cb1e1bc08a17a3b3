# frozen_string_literal: true

require "erb"
require "cgi"

module Site
  # The page frame: header, sidebar of every page by section, the page's
  # HTML, previous/next links.
  class Layout
    # What the template sees: the page, its HTML, the sections, and h().
    Context = Struct.new(:page, :body, :sections) do
      def h(text) = CGI.escapeHTML(text.to_s)
      def scope = binding
    end

    def initialize(pages, template = File.join(ROOT, "layout.html.erb"))
      @sections = pages.group_by(&:section)
      @erb = ERB.new(File.read(template), trim_mode: "-")
    end

    def render(page, body) = @erb.result(Context.new(page, body, @sections).scope)
  end
end
