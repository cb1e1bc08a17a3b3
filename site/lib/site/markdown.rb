# frozen_string_literal: true

require "kramdown"
require "kramdown-parser-gfm"
require "rouge"

module Site
  # Markdown to HTML: GitHub-flavoured Markdown, code highlighted by Rouge,
  # and [[UringMachine#read]] turned into a link to the method's entry in the
  # API reference (an unknown method fails the build).
  class Markdown
    API_REF = /\[\[(?<path>[A-Z][\w:]*(?:[#.][^\]\s]+)?)\]\]/

    def initialize(api)
      @api = api
    end

    def render(text, source)
      text = text.gsub(API_REF) do
        path = Regexp.last_match[:path]
        url = @api.url_for(path) or raise BuildError, "#{source}: no API entry for #{path}"
        "[`#{path.sub(/\AUringMachine/, 'UM')}`](#{url})"
      end
      Kramdown::Document.new(
        text,
        input: "GFM",
        hard_wrap: false,
        syntax_highlighter: "rouge",
        syntax_highlighter_opts: { css_class: "highlight", guess_lang: false }
      ).to_html
    end

    # The highlighting colours, from a theme that ships with Rouge.
    def self.stylesheet = Rouge::Themes::Github.render(scope: ".highlight")
  end
end
